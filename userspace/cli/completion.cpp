// SPDX-License-Identifier: BSD-2-Clause
// Shell completion scripts generated from the CLI11 command tree. The tree is
// first read into a small model (CommandSpec: names, options, positionals,
// subcommands), then each shell's script is written from that model.
#include "cli/completion.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <vector>

namespace rlgate::cli {
namespace {

// What an option takes after it, or what stands in a positional's place.
enum class ValueKind {
    none,         // a flag: takes nothing
    free_text,    // anything (a CIDR, a number, a duration): no candidates to offer
    choices,      // one of a fixed set (CLI::IsMember)
    files,
    directories,
};

struct ValueSpec {
    ValueKind kind = ValueKind::none;
    std::vector<std::string> choices;  // for ValueKind::choices
};

struct OptionSpec {
    std::vector<std::string> names;  // with their dashes: "--watch", "-w"
    std::string label;               // what its value is called: "socket"
    std::string description;
    ValueSpec value;
    bool repeatable = false;  // a vector option: may be given again
    bool inherited = false;   // a parent's option, reached by fallthrough
};

struct PositionalSpec {
    std::string name;  // "CIDR"
    std::string description;
    ValueSpec value;
    bool required = false;
    bool repeats = false;  // takes every remaining word (CIDR...)
};

struct CommandSpec {
    std::vector<std::string> path;     // from the program down: {"rlctl", "ban", "add"}
    std::vector<std::string> aliases;  // other names it may be typed as
    std::string description;
    std::vector<OptionSpec> options;  // its own, then the ones inherited by fallthrough
    std::vector<PositionalSpec> positionals;
    std::vector<CommandSpec> subcommands;

    [[nodiscard]] const std::string& name() const { return path.back(); }
    [[nodiscard]] std::vector<std::string> typed_names() const {
        std::vector<std::string> names{name()};
        names.insert(names.end(), aliases.begin(), aliases.end());
        return names;
    }
};

std::string join(const std::vector<std::string>& words, std::string_view separator) {
    std::string out;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i > 0)
            out += separator;
        out += words[i];
    }
    return out;
}

std::string lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::istringstream in(text);
    for (std::string part; std::getline(in, part, separator);)
        parts.push_back(part);
    return parts;
}

// CLI11 keeps no list of allowed values, but CLI::IsMember (and the Transformers)
// describe theirs in the option's type name: "TEXT:{native,generic,auto}", or
// "{from->to,...}" for maps, whose keys are what a user types.
std::vector<std::string> choices_of(const CLI::Option& option) {
    const std::string type_name = option.get_type_name();
    const auto open = type_name.find(":{");
    const auto close = open == std::string::npos ? std::string::npos : type_name.find('}', open);
    if (close == std::string::npos)
        return {};
    std::vector<std::string> choices;
    for (auto& choice : split(type_name.substr(open + 2, close - open - 2), ',')) {
        if (const auto arrow = choice.find("->"); arrow != std::string::npos)
            choice.erase(arrow);
        if (!choice.empty())
            choices.push_back(choice);
    }
    return choices;
}

// A value is a path when a validator says so (CLI::ExistingFile is described as
// FILE, ExistingDirectory as DIR, ExistingPath as PATH(existing)) or when the
// option's name does: --socket, --config, --file, --cidr-file, FILE.
ValueKind path_kind(const CLI::Option& option, const std::vector<std::string>& names) {
    for (const auto& segment : split(option.get_type_name(), ':')) {
        if (segment.starts_with("FILE") || segment.starts_with("PATH"))
            return ValueKind::files;
        if (segment.starts_with("DIR"))
            return ValueKind::directories;
    }
    static const std::set<std::string> file_words{"file", "path", "socket", "config", "conf"};
    static const std::set<std::string> directory_words{"dir", "directory"};
    for (const auto& name : names) {
        std::string word = lowercase(name);
        word.erase(0, word.find_first_not_of('-'));
        if (const auto last_separator = word.find_last_of("-_"); last_separator != std::string::npos)
            word.erase(0, last_separator + 1);
        if (file_words.contains(word))
            return ValueKind::files;
        if (directory_words.contains(word))
            return ValueKind::directories;
    }
    return ValueKind::none;
}

ValueSpec value_of(const CLI::Option& option, const std::vector<std::string>& names) {
    if (auto choices = choices_of(option); !choices.empty())
        return {ValueKind::choices, std::move(choices)};
    if (const auto kind = path_kind(option, names); kind != ValueKind::none)
        return {kind, {}};
    return {ValueKind::free_text, {}};
}

OptionSpec option_spec(const CLI::Option& option) {
    OptionSpec spec;
    for (const auto& long_name : option.get_lnames())
        spec.names.push_back("--" + long_name);
    for (const auto& short_name : option.get_snames())
        spec.names.push_back("-" + short_name);
    spec.label = spec.names.front().substr(spec.names.front().find_first_not_of('-'));
    spec.description = option.get_description();
    // Flags expect no value (CLI11 sets expected(0) on them); an option whose value
    // is optional cannot be told from a following argument, so it counts as a flag.
    if (option.get_type_size() > 0 && option.get_expected_min() > 0) {
        spec.value = value_of(option, spec.names);
        spec.repeatable = option.get_expected_max() > 1;
    }
    return spec;
}

PositionalSpec positional_spec(const CLI::Option& option) {
    PositionalSpec spec;
    spec.name = option.get_name(/*positional=*/true);
    spec.description = option.get_description();
    spec.value = value_of(option, {spec.name});
    spec.required = option.get_required();
    spec.repeats = option.get_items_expected_max() > 1;
    return spec;
}

// The options and positionals of `app`, including those of its option groups
// (CLI11 makes those nameless subcommands; their options belong to `app`).
void collect_arguments(const CLI::App& app, std::vector<OptionSpec>& options,
                       std::vector<PositionalSpec>& positionals) {
    for (const CLI::Option* option : app.get_options()) {
        if (option->get_group().empty())
            continue;  // hidden from --help: not offered either
        if (option->nonpositional())
            options.push_back(option_spec(*option));
        if (option->get_positional())
            positionals.push_back(positional_spec(*option));
    }
    for (const CLI::App* group : app.get_subcommands([](const CLI::App* sub) { return sub->get_name().empty(); }))
        collect_arguments(*group, options, positionals);
}

// Appends `candidates` to `options`, less the names `options` already has: the
// first definition of a name wins, as when CLI11 looks an option up. With
// fallthrough, an option a subcommand does not know goes to its parent (`rlctl ban
// list --json`), so the parent's options come after the subcommand's own (its own
// -h/--help wins). Option groups repeat their parent's -h/--help: dropped here.
void append_unshadowed(std::vector<OptionSpec>& options, std::vector<OptionSpec> candidates, bool inherited) {
    std::set<std::string> taken;
    for (const auto& option : options)
        taken.insert(option.names.begin(), option.names.end());
    for (auto& option : candidates) {
        std::erase_if(option.names, [&](const std::string& name) { return taken.contains(name); });
        if (option.names.empty())
            continue;
        taken.insert(option.names.begin(), option.names.end());
        option.inherited = inherited;
        options.push_back(std::move(option));
    }
}

CommandSpec command_spec(const CLI::App& app, std::vector<std::string> path,
                         const std::vector<OptionSpec>* parent_options) {
    CommandSpec spec;
    spec.path = std::move(path);
    if (parent_options != nullptr)  // the program's own name and aliases are not typed as subcommands
        spec.aliases = app.get_aliases();
    spec.description = app.get_description();
    std::vector<OptionSpec> own_options;
    collect_arguments(app, own_options, spec.positionals);
    append_unshadowed(spec.options, std::move(own_options), /*inherited=*/false);
    if (parent_options != nullptr && app.get_fallthrough())
        append_unshadowed(spec.options, *parent_options, /*inherited=*/true);
    for (const CLI::App* sub : app.get_subcommands({})) {
        if (sub->get_name().empty() || sub->get_disabled() || sub->get_group().empty())
            continue;  // option groups (done above), disabled and hidden subcommands
        auto sub_path = spec.path;
        sub_path.push_back(sub->get_name());
        spec.subcommands.push_back(command_spec(*sub, std::move(sub_path), &spec.options));
    }
    return spec;
}

// Every command of the tree, parents before their subcommands.
void flatten(const CommandSpec& command, std::vector<const CommandSpec*>& out) {
    out.push_back(&command);
    for (const auto& sub : command.subcommands)
        flatten(sub, out);
}

// A shell function name made of the program's name: "rlgate-ctl" -> "rlgate_ctl".
std::string identifier(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_')
            c = '_';
    return out;
}

// One literal word for bash or zsh: single quotes, each ' written as '\''.
std::string single_quoted(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

std::vector<std::string> single_quoted_each(const std::vector<std::string>& words) {
    std::vector<std::string> quoted;
    for (const auto& word : words)
        quoted.push_back(single_quoted(word));
    return quoted;
}

// Words for an array: 'a' 'b'.
std::string single_quoted_words(const std::vector<std::string>& words) { return join(single_quoted_each(words), " "); }

// A case pattern matching any of the words literally: 'a'|'b'.
std::string case_pattern(const std::vector<std::string>& words) { return join(single_quoted_each(words), "|"); }

// Backslash before every character in `specials` (and before backslash itself).
std::string backslashed(std::string_view text, std::string_view specials) {
    std::string out;
    for (const char c : text) {
        if (c == '\\' || specials.find(c) != std::string_view::npos)
            out += '\\';
        out += c;
    }
    return out;
}

// ---- bash -----------------------------------------------------------------

std::string bash_value_kind(ValueKind kind) {
    switch (kind) {
        case ValueKind::none:
            return "none";
        case ValueKind::free_text:
            return "text";
        case ValueKind::choices:
            return "words";
        case ValueKind::files:
            return "files";
        case ValueKind::directories:
            return "dirs";
    }
    return "text";
}

// "value_kind=words; reply=('native' 'generic' 'auto')"
std::string bash_value_assignment(const ValueSpec& value) {
    std::string out = "value_kind=" + bash_value_kind(value.kind);
    if (value.kind == ValueKind::choices)
        out += "; reply=(" + single_quoted_words(value.choices) + ")";
    return out;
}

std::string bash_script(const CommandSpec& root) {
    std::vector<const CommandSpec*> commands;
    flatten(root, commands);
    std::map<const CommandSpec*, const CommandSpec*> parent_of;
    for (const CommandSpec* command : commands)
        for (const auto& sub : command->subcommands)
            parent_of[&sub] = command;
    const std::string fn = "_" + identifier(root.name());
    const auto key = [](const CommandSpec& command) { return single_quoted(join(command.path, " ")); };
    std::ostringstream out;

    out << "# bash completion for " << root.name() << ", generated by `" << root.name()
        << " completion bash` from its own command\n"
        << "# tree: regenerate it after an upgrade. Needs plain bash 4+ (not the bash-completion package).\n"
        << "#   load now:  source <(" << root.name() << " completion bash)\n"
        << "#   install:   " << root.name() << " completion bash > /usr/share/bash-completion/completions/"
        << root.name() << "\n"
        << "# A command path is its words joined by spaces: " << single_quoted(root.name() + " sub") << ".\n\n";

    out << "# The subcommands of command path $1, into `reply`.\n"
        << fn << "_subcommands() {\n    case $1 in\n";
    for (const CommandSpec* command : commands) {
        if (command->subcommands.empty())
            continue;
        std::vector<std::string> names;
        for (const auto& sub : command->subcommands)
            for (const auto& name : sub.typed_names())
                names.push_back(name);
        out << "        " << key(*command) << ") reply=(" << single_quoted_words(names) << ") ;;\n";
    }
    out << "        *) reply=() ;;\n    esac\n}\n\n";

    out << "# Sets `next_path` to command path $1 followed by subcommand $2 (a name or an\n"
        << "# alias); fails when $2 is not a subcommand of $1.\n"
        << fn << "_descend() {\n    case $1 in\n";
    for (const CommandSpec* command : commands) {
        if (command->subcommands.empty())
            continue;
        out << "        " << key(*command) << ")\n            case $2 in\n";
        for (const auto& sub : command->subcommands)
            out << "                " << case_pattern(sub.typed_names()) << ") next_path="
                << key(sub) << " ;;\n";
        out << "                *) return 1 ;;\n            esac ;;\n";
    }
    out << "        *) return 1 ;;\n    esac\n}\n\n";

    out << "# The options accepted at command path $1 (its own and the global ones), into `reply`.\n"
        << fn << "_options() {\n    case $1 in\n";
    for (const CommandSpec* command : commands) {
        std::vector<std::string> names;
        for (const auto& option : command->options)
            names.insert(names.end(), option.names.begin(), option.names.end());
        out << "        " << key(*command) << ") reply=(" << single_quoted_words(names) << ") ;;\n";
    }
    out << "        *) reply=() ;;\n    esac\n}\n\n";

    out << "# What option $2 takes at command path $1, into `value_kind`: none (a flag),\n"
        << "# text (anything), words (one of `reply`), files or dirs. Options a command does\n"
        << "# not know fall through to its parent, as in CLI11.\n"
        << fn << "_option_value() {\n    value_kind=none\n    reply=()\n    case $1 in\n";
    for (const CommandSpec* command : commands) {
        const bool falls_through = std::ranges::any_of(command->options, &OptionSpec::inherited);
        // A flag of the command's own that has the name of a parent's option with a
        // value must be listed, or the lookup would fall through to the parent's.
        std::set<std::string> parent_value_names;
        if (falls_through)
            for (const auto& option : parent_of.at(command)->options)
                if (option.value.kind != ValueKind::none)
                    parent_value_names.insert(option.names.begin(), option.names.end());
        std::vector<std::string> cases;
        for (const auto& option : command->options) {
            if (option.inherited)
                continue;
            if (option.value.kind != ValueKind::none ||
                std::ranges::any_of(option.names, [&](const auto& name) { return parent_value_names.contains(name); }))
                cases.push_back(case_pattern(option.names) + ") " + bash_value_assignment(option.value) + " ;;");
        }
        const std::string fall_through_call =
            falls_through ? fn + "_option_value " + key(*parent_of.at(command)) + " \"$2\" ;;" : "";
        if (cases.empty()) {
            if (falls_through)
                out << "        " << key(*command) << ") " << fall_through_call << "\n";
            continue;
        }
        if (falls_through)
            cases.push_back("*) " + fall_through_call);
        out << "        " << key(*command) << ")\n            case $2 in\n";
        for (const auto& line : cases)
            out << "                " << line << "\n";
        out << "            esac ;;\n";
    }
    out << "    esac\n    return 0\n}\n\n";

    out << "# What positional argument number $2 (from 0) is at command path $1, as\n"
        << "# " << fn << "_option_value tells it (only those with candidates to offer).\n"
        << fn << "_positional_value() {\n    value_kind=none\n    reply=()\n    case $1 in\n";
    for (const CommandSpec* command : commands) {
        std::vector<std::string> cases;
        for (std::size_t i = 0; i < command->positionals.size(); ++i) {
            const auto& positional = command->positionals[i];
            if (positional.value.kind == ValueKind::free_text)
                continue;
            // The last positional of a vector (CIDR...) takes every remaining word.
            const bool takes_the_rest = positional.repeats && i + 1 == command->positionals.size();
            const std::string pattern = takes_the_rest ? "*" : std::to_string(i);
            cases.push_back(pattern + ") " + bash_value_assignment(positional.value) + " ;;");
        }
        if (cases.empty())
            continue;
        out << "        " << key(*command) << ")\n            case $2 in\n";
        for (const auto& line : cases)
            out << "                " << line << "\n";
        out << "            esac ;;\n";
    }
    out << "    esac\n    return 0\n}\n\n";

    // The fixed part, with placeholders: the program's name is inserted last, so
    // that nothing in it is taken for a placeholder.
    std::string fixed_part = R"BASH(# Adds to COMPREPLY the words among $2... that start with $1, compared as text
# (compgen -W would expand them) and quoted for the command line (a choice "a b").
@FN@_add_matching() {
    local prefix=$1 word quoted
    shift
    for word in "$@"; do
        if [[ $word == "$prefix"* ]]; then
            printf -v quoted %q "$word"
            COMPREPLY+=("$quoted")
        fi
    done
    return 0
}

# Adds to COMPREPLY the values of kind `value_kind` (choices in `reply`) that start with $1.
@FN@_add_values() {
    local name
    case $value_kind in
        words) @FN@_add_matching "$1" "${reply[@]}" ;;
        files | dirs)
            # So that bash quotes the names and ends directories with a slash.
            compopt -o filenames 2>/dev/null || true
            while IFS= read -r name; do
                COMPREPLY+=("$name")
            done < <(if [[ $value_kind == dirs ]]; then compgen -d -- "$1"; else compgen -f -- "$1"; fi)
            ;;
    esac
    return 0
}

@FN@() {
    COMPREPLY=()
    local cur=${COMP_WORDS[COMP_CWORD]-}
    local path=@ROOT@ next_path='' value_kind=none value_option='' word
    local -a reply=()
    local -i i positional=0 options_ended=0
    # Walk the words before the cursor: descend into subcommands, step over option
    # values, count positional arguments.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((options_ended)) || [[ $word != -* ]]; then
            if ((positional == 0 && !options_ended)) && @FN@_descend "$path" "$word"; then
                path=$next_path
            else
                positional+=1
            fi
            continue
        fi
        if [[ $word == -- ]]; then
            options_ended=1
            continue
        fi
        if [[ $word == *=* ]]; then
            continue  # --name=value in one word
        fi
        # --name=value comes as three words ('=' is in COMP_WORDBREAKS):
        # with the cursor on '=' or after it, it is that value being completed.
        if [[ ${COMP_WORDS[i + 1]-} == = ]]; then
            if ((i + 2 >= COMP_CWORD)); then
                value_option=$word
                [[ $cur == = ]] && cur=''
                break
            fi
            i+=2
            continue
        fi
        @FN@_option_value "$path" "$word"
        if [[ $value_kind != none ]]; then
            if ((i + 1 == COMP_CWORD)); then
                value_option=$word
                break
            fi
            i+=1
        fi
    done

    if [[ -n $value_option ]]; then
        @FN@_option_value "$path" "$value_option"
        @FN@_add_values "$cur"
        return 0
    fi
    if ((!options_ended)) && [[ $cur == -* ]]; then
        @FN@_options "$path"
        @FN@_add_matching "$cur" "${reply[@]}"
        return 0
    fi
    if ((positional == 0 && !options_ended)); then
        @FN@_subcommands "$path"
        @FN@_add_matching "$cur" "${reply[@]}"
    fi
    @FN@_positional_value "$path" "$positional"
    @FN@_add_values "$cur"
    return 0
}

complete -F @FN@ @ROOT@
)BASH";
    const auto replace_all = [&fixed_part](std::string_view placeholder, const std::string& value) {
        for (auto at = fixed_part.find(placeholder); at != std::string::npos;
             at = fixed_part.find(placeholder, at + value.size()))
            fixed_part.replace(at, placeholder.size(), value);
    };
    replace_all("@FN@", fn);
    replace_all("@ROOT@", single_quoted(root.name()));
    out << fixed_part;
    return out.str();
}

// ---- zsh ------------------------------------------------------------------

// The text between [ and ] of an _arguments option spec.
std::string zsh_explanation(std::string_view text) { return backslashed(text, "[]:"); }

// A message of an _arguments spec (the text between colons).
std::string zsh_message(std::string_view text) { return backslashed(text, ":"); }

// "name:description" for _describe: it splits at the first colon not escaped,
// and takes backslashes as escapes in both parts.
std::string zsh_describe_entry(std::string_view name, std::string_view description) {
    return backslashed(name, ":") + ":" + backslashed(description, "");
}

// The action that completes a value of this kind, for an _arguments spec.
std::string zsh_action(const ValueSpec& value) {
    switch (value.kind) {
        case ValueKind::choices: {
            // _arguments evaluates the list, so every ASCII character that is not
            // plainly part of a word gets a backslash (UTF-8 bytes are left whole).
            const auto plain = [](char c) {
                const auto byte = static_cast<unsigned char>(c);
                return byte >= 0x80 || std::isalnum(byte) != 0 ||
                       std::string_view("_.,+-=@%/").find(c) != std::string_view::npos;
            };
            std::vector<std::string> words;
            for (const auto& choice : value.choices) {
                std::string word;
                for (const char c : choice) {
                    if (!plain(c))
                        word += '\\';
                    word += c;
                }
                words.push_back(word);
            }
            return "(" + join(words, " ") + ")";
        }
        case ValueKind::files:
            return "_files";
        case ValueKind::directories:
            return "_files -/";
        case ValueKind::none:
        case ValueKind::free_text:
            break;
    }
    return " ";  // a single space: show the message, offer nothing
}

std::vector<std::string> zsh_option_specs(const OptionSpec& option) {
    // Not offered again once given, unless it is a list (--file a --file b).
    const std::string exclusions = option.repeatable ? "*" : "(" + join(option.names, " ") + ")";
    const bool takes_value = option.value.kind != ValueKind::none;
    std::vector<std::string> specs;
    for (const auto& name : option.names) {
        const bool long_name = name.starts_with("--");
        std::string spec = exclusions + name;
        if (takes_value)
            spec += long_name ? "=" : "+";  // --name=value or --name value; -nVALUE or -n VALUE
        if (!option.description.empty())
            spec += "[" + zsh_explanation(option.description) + "]";
        if (takes_value)
            spec += ":" + zsh_message(option.label) + ":" + zsh_action(option.value);
        specs.push_back(single_quoted(spec));
    }
    return specs;
}

std::string zsh_positional_spec(const PositionalSpec& positional, std::size_t index, bool last) {
    const std::string message =
        positional.description.empty() ? positional.name : positional.name + " (" + positional.description + ")";
    std::string spec;
    if (positional.repeats && last)
        spec = "*:";
    else
        spec = std::to_string(index + 1) + (positional.required ? ":" : "::");
    return single_quoted(spec + zsh_message(message) + ":" + zsh_action(positional.value));
}

// One completion function per command; a command with subcommands completes their
// names (with descriptions) as its first argument and hands the rest of the line to
// the chosen subcommand's function.
void zsh_function(std::ostream& out, const CommandSpec& command,
                  const std::map<const CommandSpec*, std::string>& function_of) {
    const std::string continuation = " \\\n        ";
    std::vector<std::string> context_words;  // for zstyle: ":completion:*:*:rlctl-ban-add:*"
    for (const auto& word : command.path)
        context_words.push_back(identifier(word));
    const std::string context_prefix = join(context_words, "-");
    out << function_of.at(&command) << "() {\n";
    if (!command.subcommands.empty())
        out << "    local curcontext=$curcontext state state_descr line\n"
            << "    local -i ret=1\n"
            << "    typeset -A opt_args\n"
            << "    _arguments -C -s -S";
    else
        out << "    _arguments -s -S";
    for (const auto& option : command.options)
        for (const auto& spec : zsh_option_specs(option))
            out << continuation << spec;
    if (command.subcommands.empty()) {
        for (std::size_t i = 0; i < command.positionals.size(); ++i)
            out << continuation << zsh_positional_spec(command.positionals[i], i, i + 1 == command.positionals.size());
        out << "\n}\n\n";
        return;
    }
    out << continuation << "': :->command'" << continuation << "'*:: :->argument' && ret=0\n"
        << "    case $state in\n"
        << "        (command)\n"
        << "            local -a commands=(\n";
    for (const auto& sub : command.subcommands)
        for (const auto& name : sub.typed_names())
            out << "                " << single_quoted(zsh_describe_entry(name, sub.description)) << "\n";
    out << "            )\n"
        << "            _describe -t commands " << single_quoted(join(command.path, " ") + " command")
        << " commands && ret=0\n"
        << "            ;;\n"
        << "        (argument)\n"
        << "            curcontext=${curcontext%:*:*}:" << context_prefix << "-$words[1]:\n"
        << "            case $words[1] in\n";
    for (const auto& sub : command.subcommands)
        out << "                (" << case_pattern(sub.typed_names()) << ") " << function_of.at(&sub)
            << " && ret=0 ;;\n";
    out << "            esac\n"
        << "            ;;\n"
        << "    esac\n"
        << "    return ret\n"
        << "}\n\n";
}

std::string zsh_script(const CommandSpec& root) {
    std::vector<const CommandSpec*> commands;
    flatten(root, commands);
    const std::string fn = "_" + identifier(root.name());
    // Function names from the command paths, made unique should two paths map to
    // the same identifier ("a-b" and "a_b").
    std::map<const CommandSpec*, std::string> function_of;
    std::set<std::string> used;
    for (const CommandSpec* command : commands) {
        std::string name = fn;
        for (std::size_t i = 1; i < command->path.size(); ++i)
            name += "_" + identifier(command->path[i]);
        const std::string base = name;
        for (int n = 2; used.contains(name); ++n)
            name = base + "_" + std::to_string(n);
        used.insert(name);
        function_of[command] = name;
    }

    std::ostringstream out;
    out << "#compdef " << root.name() << "\n"
        << "# zsh completion for " << root.name() << ", generated by `" << root.name()
        << " completion zsh` from its own command\n"
        << "# tree: regenerate it after an upgrade.\n"
        << "#   load now (after compinit):  source <(" << root.name() << " completion zsh)\n"
        << "#   install:  " << root.name() << " completion zsh > \"${fpath[1]}/" << fn << "\"\n\n";
    for (const CommandSpec* command : commands)
        zsh_function(out, *command, function_of);
    out << "if [[ ${zsh_eval_context[-1]-} == loadautofunc ]]; then\n"
        << "    # Autoloaded from $fpath by compinit: this is the first completion, do it.\n"
        << "    " << fn << " \"$@\"\n"
        << "else\n"
        << "    # Sourced: register the function for the completions to come.\n"
        << "    compdef " << fn << " " << single_quoted(root.name()) << "\n"
        << "fi\n";
    return out.str();
}

}  // namespace

std::string bash_completion_script(const CLI::App& app, std::string_view command_name) {
    return bash_script(command_spec(app, {std::string(command_name)}, nullptr));
}

std::string zsh_completion_script(const CLI::App& app, std::string_view command_name) {
    return zsh_script(command_spec(app, {std::string(command_name)}, nullptr));
}

}  // namespace rlgate::cli
