// SPDX-License-Identifier: BSD-2-Clause
// Shell completion scripts for a CLI11 command tree (`rlctl completion bash|zsh`).
// The scripts are generated from the configured CLI::App itself, so they follow
// every subcommand, option and positional added to it: nothing to keep in sync.
#pragma once

#include <string>
#include <string_view>

namespace CLI {
class App;
}

namespace rlgate::cli {

// A bash script defining _<command_name> and registering it with `complete -F`.
// Needs bash 4+ only (not the bash-completion package).
[[nodiscard]] std::string bash_completion_script(const CLI::App& app, std::string_view command_name);

// A `#compdef <command_name>` zsh script: works saved as _<command_name> in a
// directory of $fpath, and sourced after compinit (`source <(rlctl completion zsh)`).
[[nodiscard]] std::string zsh_completion_script(const CLI::App& app, std::string_view command_name);

}  // namespace rlgate::cli
