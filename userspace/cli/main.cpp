// SPDX-License-Identifier: BSD-2-Clause
// rlctl: the operator CLI of rlgate. Tables for people, --json for scripts.
// Exit codes: 0 success, 1 error, 2 usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/client.hpp"
#include "cli/completion.hpp"
#include "cli/render.hpp"
#include "core/config/config.hpp"
#include "daemon/atomic_file.hpp"

namespace {

using nlohmann::json;
using rlgate::cli::CliError;
using rlgate::cli::ControlClient;

struct Globals {
    std::string socket = "/run/rlgate/rlgated.sock";
    bool json_output = false;
    unsigned timeout_ms = 10000;
};

void print(const Globals& g, const json& result, void (*render)(const json&, std::ostream&)) {
    if (g.json_output)
        std::cout << result.dump(2) << std::endl;
    else
        render(result, std::cout);
}

void print_done(const Globals& g, const json& result, const std::string& message) {
    if (g.json_output)
        std::cout << result.dump(2) << std::endl;
    else
        std::cout << message << std::endl;
}

std::string read_config_text(const std::string& path) {
    try {
        return rlgate::daemon::read_file(path);
    } catch (const std::exception& e) {
        throw CliError(e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"rlctl: operate rlgated (XDP rate limiting)"};
    app.require_subcommand(1);
    app.fallthrough();  // inherited by subcommands: `rlctl deny list --json` works
    Globals g;
    if (const char* env = std::getenv("RLGATE_SOCKET"))
        g.socket = env;
    app.add_option("--socket", g.socket, "control socket of rlgated (env RLGATE_SOCKET)")->capture_default_str();
    app.add_flag("--json", g.json_output, "print machine-readable JSON (stable field names, docs/rlctl.md)");
    app.add_option("--timeout", g.timeout_ms, "milliseconds to wait for the daemon")->capture_default_str();

    auto* status = app.add_subcommand("status", "interfaces, attach mode, policy generation, uptime, map fill");
    auto* stats = app.add_subcommand("stats", "packets passed and dropped, by reason, tier and rule");
    bool watch = false;
    double watch_interval = 1.0;
    stats->add_flag("-w,--watch", watch, "refresh until interrupted");
    stats->add_option("--interval", watch_interval, "seconds between refreshes")->check(CLI::Range(0.2, 3600.0));
    auto* top = app.add_subcommand("top", "heaviest sources right now");
    unsigned top_n = 10, top_interval = 1000;
    top->add_option("-n", top_n, "how many sources")->check(CLI::Range(1, 10000))->capture_default_str();
    top->add_option("--interval", top_interval, "measurement window in ms")->check(CLI::Range(100, 10000))->capture_default_str();

    auto* policy = app.add_subcommand("policy", "show, validate or apply a policy");
    policy->require_subcommand(1);
    auto* policy_show = policy->add_subcommand("show", "the policy in force");
    std::string policy_file;
    auto* policy_validate = policy->add_subcommand("validate", "check a config file (no daemon needed)");
    policy_validate->add_option("FILE", policy_file, "config file")->required();
    auto* policy_apply = policy->add_subcommand("apply", "apply the policy of FILE now (until the next reload)");
    policy_apply->add_option("FILE", policy_file, "config file")->required();
    auto* reload = app.add_subcommand("reload", "reload the daemon's config file");

    std::string cidr, tier_name, ifname, mode = "native", ttl, reason;
    auto add_list = [&](const char* name, const char* what) {
        auto* cmd = app.add_subcommand(name, std::string("runtime ") + what + " entries (kept across reloads and restarts)");
        cmd->require_subcommand(1);
        cmd->add_subcommand("add", std::string("add CIDR to the ") + what)->add_option("CIDR", cidr)->required();
        cmd->add_subcommand("del", std::string("remove CIDR from the ") + what)->add_option("CIDR", cidr)->required();
        cmd->add_subcommand("list", std::string("entries of the ") + what);
        return cmd;
    };
    auto* allow = add_list("allow", "allowlist");
    auto* deny = add_list("deny", "denylist");
    auto* tier = app.add_subcommand("tier", "tiers and their members");
    tier->require_subcommand(1);
    auto* tier_list = tier->add_subcommand("list", "tiers, limits and usage");
    auto* tier_set = tier->add_subcommand("set", "put CIDR in TIER");
    tier_set->add_option("CIDR", cidr)->required();
    tier_set->add_option("TIER", tier_name)->required();
    auto* attach = app.add_subcommand("attach", "attach the XDP program to IFACE");
    attach->add_option("IFACE", ifname)->required();
    attach->add_option("--mode", mode, "native (default), generic, or auto")
        ->check(CLI::IsMember({"native", "generic", "auto"}));
    auto* detach = app.add_subcommand("detach", "detach from IFACE; without IFACE: detach everything, remove "
                                                 "the pinned state and stop rlgated");
    detach->add_option("IFACE", ifname);
    auto* ban = app.add_subcommand("ban", "bans (dropped in the kernel until they expire)");
    ban->require_subcommand(1);
    std::vector<std::string> cidrs;
    std::string cidr_file;
    auto* ban_add = ban->add_subcommand("add", "ban CIDR... (refused for allowlisted sources)");
    ban_add->add_option("CIDR", cidrs, "prefixes or addresses");
    ban_add->add_option("--file", cidr_file, "also ban every CIDR of FILE (one per line, # comments)");
    ban_add->add_option("--ttl", ttl, "duration, e.g. 90s, 10m, 2h, 7d (default: until removed)");
    ban_add->add_option("--reason", reason, "why (shown by ban list, kept across restarts)");
    auto* ban_del = ban->add_subcommand("del", "lift the ban of CIDR...");
    ban_del->add_option("CIDR", cidrs)->required();
    auto* ban_list = ban->add_subcommand("list", "active bans: source, origin, reason, remaining time, hits");
    auto* ban_history = ban->add_subcommand("history", "recorded violations, newest first");
    ban_history->add_option("CIDR", cidr, "only sources inside CIDR");
    unsigned history_limit = 100;
    ban_history->add_option("-n", history_limit, "at most this many")->capture_default_str();
    auto* events = app.add_subcommand("events", "auto-ban events and sampled drops, as they happen");
    bool follow = false;
    unsigned max_events = 0, quiet_ms = 0;
    events->add_flag("-f,--follow", follow, "keep streaming (the default; for symmetry with tail)");
    events->add_option("--count", max_events, "stop after this many events");
    events->add_option("--for", quiet_ms, "stop after this many ms without an event");
    auto* override_cmd = app.add_subcommand("override", "change a tier's or rule's limits now, for a while");
    override_cmd->require_subcommand(1);
    std::string override_name, override_for;
    double override_factor = 0;
    std::uint64_t override_pps = 0;
    bool override_rule = false, override_all = false;
    auto* override_set = override_cmd->add_subcommand("set", "scale NAME's limits (--factor) or set its rate (--pps)");
    override_set->add_option("NAME", override_name, "a tier (or, with --rule, an L4 rule)")->required();
    auto* factor_opt = override_set->add_option("--factor", override_factor, "multiply its rates and bursts, e.g. 2 or 0.5")
                           ->check(CLI::Range(0.001, 1000.0));
    auto* pps_opt = override_set->add_option("--pps", override_pps, "packets per second (burst scaled alike)")
                        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000'000ULL}));
    factor_opt->excludes(pps_opt);
    override_set->add_option("--for", override_for, "how long, e.g. 30m, 2h, 3d (default: until cleared)");
    override_set->add_option("--reason", reason, "why (shown by override list)");
    override_set->add_flag("--rule", override_rule, "NAME is an L4 rule (when a tier has the same name)");
    auto* override_list = override_cmd->add_subcommand("list", "overrides, schedule, emergency and the controller's factors");
    auto* override_clear = override_cmd->add_subcommand("clear", "remove the override of NAME (or --all) set with rlctl");
    override_clear->add_option("NAME", override_name);
    override_clear->add_flag("--all", override_all, "every override set with rlctl");
    auto* emergency = app.add_subcommand("emergency", "apply the config's emergency profile now, or revert it");
    std::string emergency_state;
    emergency->add_option("STATE", emergency_state, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
    auto* fleet = app.add_subcommand("fleet", "fleet mode: bans shared with other hosts through Redis");
    fleet->require_subcommand(1);
    auto* fleet_status = fleet->add_subcommand("status", "this host, Redis health, last sync, peers seen");
    auto* alerts = app.add_subcommand("alerts", "alert rules, what fires now, recent notifications, webhooks");
    auto* insights = app.add_subcommand("insights", "tuning advice: limits hit often or never, top offenders");
    auto* source = app.add_subcommand("source", "what the dataplane keeps about ADDRESS: state, tier, counters per rule");
    std::string source_address;
    source->add_option("ADDRESS", source_address, "IPv4 or IPv6 address")->required();
    auto* version = app.add_subcommand("version", "versions of rlctl and rlgated");
    auto* completion = app.add_subcommand("completion", "print the bash or zsh completion script (no daemon needed)");
    std::string completion_shell;
    completion->add_option("SHELL", completion_shell, "bash or zsh; load it with: source <(rlctl completion bash)")
        ->required()
        ->check(CLI::IsMember({"bash", "zsh"}));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }

    if (completion->parsed()) {
        // Written from `app` as configured above, so it knows every subcommand and option.
        std::cout << (completion_shell == "bash" ? rlgate::cli::bash_completion_script(app, "rlctl")
                                                 : rlgate::cli::zsh_completion_script(app, "rlctl"));
        return 0;
    }

    const std::chrono::milliseconds timeout(g.timeout_ms);
    try {
        if (policy_validate->parsed()) {
            try {
                rlgate::config::parse_config(read_config_text(policy_file), policy_file);
            } catch (const rlgate::config::ConfigError& e) {
                if (g.json_output)
                    std::cout << json{{"valid", false}, {"file", e.file()}, {"field", e.field()}, {"reason", e.reason()}}.dump(2)
                              << std::endl;
                else
                    std::cerr << "rlctl: " << e.what() << std::endl;
                return 1;
            }
            print_done(g, {{"valid", true}, {"file", policy_file}}, policy_file + ": OK");
            return 0;
        }
        if (version->parsed()) {
            json v{{"rlctl", RLGATE_VERSION}};
            try {
                ControlClient c(g.socket, timeout);
                v["rlgated"] = c.call("version");
            } catch (const CliError& e) {
                v["rlgated_error"] = e.what();
            }
            if (g.json_output)
                std::cout << v.dump(2) << std::endl;
            else
                std::cout << "rlctl " << RLGATE_VERSION << "\nrlgated "
                          << (v.contains("rlgated") ? v["rlgated"].value("version", "?") : "(" + v.value("rlgated_error", "") + ")")
                          << std::endl;
            return 0;
        }

        // `top` answers after its measurement window: --timeout counts from there.
        const auto call_timeout = top->parsed() && timeout.count() > 0
                                      ? timeout + std::chrono::milliseconds(top_interval)
                                      : timeout;
        ControlClient client(g.socket, call_timeout);
        if (status->parsed()) {
            print(g, client.call("status"), rlgate::cli::render_status);
        } else if (stats->parsed()) {
            if (!watch) {
                print(g, client.call("stats"), rlgate::cli::render_stats);
            } else {
                for (;;) {
                    const auto r = client.call("stats");
                    if (g.json_output) {
                        std::cout << r.dump() << std::endl;
                    } else {
                        std::cout << "\033[H\033[2J";
                        rlgate::cli::render_stats(r, std::cout);
                        std::cout.flush();
                    }
                    std::this_thread::sleep_for(std::chrono::duration<double>(watch_interval));
                }
            }
        } else if (top->parsed()) {
            print(g, client.call("top", {{"n", top_n}, {"interval_ms", top_interval}}), rlgate::cli::render_top);
        } else if (policy_show->parsed()) {
            print(g, client.call("policy.show"), rlgate::cli::render_policy);
        } else if (policy_apply->parsed()) {
            const auto r = client.call("policy.apply", {{"text", read_config_text(policy_file)}, {"file", policy_file}});
            print_done(g, r, "applied " + policy_file + ": generation " + r["generation"].dump() +
                                 " (the next reload returns to the daemon's config file)");
        } else if (reload->parsed()) {
            const auto r = client.call("reload");
            print_done(g, r, "reloaded: generation " + r["generation"].dump());
        } else if (allow->parsed() || deny->parsed()) {
            auto* list = allow->parsed() ? allow : deny;
            const std::string base = allow->parsed() ? "allow" : "deny";
            for (const char* verb : {"add", "del", "list"}) {
                if (!list->get_subcommand(verb)->parsed())
                    continue;
                if (std::string(verb) == "list") {
                    print(g, client.call(base + ".list"), rlgate::cli::render_entries);
                } else {
                    const auto r = client.call(base + "." + verb, {{"cidr", cidr}});
                    print_done(g, r, r.value("changed", false) ? cidr + (std::string(verb) == "add" ? " added to " : " removed from ") +
                                                                   (base == "allow" ? "the allowlist" : "the denylist")
                                                               : cidr + " already there: nothing changed");
                }
            }
        } else if (tier_list->parsed()) {
            print(g, client.call("tier.list"), rlgate::cli::render_tiers);
        } else if (tier_set->parsed()) {
            const auto r = client.call("tier.set", {{"cidr", cidr}, {"tier", tier_name}});
            print_done(g, r, cidr + " is now in tier " + tier_name);
        } else if (attach->parsed()) {
            const auto r = client.call("attach", {{"interface", ifname}, {"mode", mode}});
            print_done(g, r, "attached to " + ifname + " in " + r.value("mode", mode) + " mode");
        } else if (detach->parsed()) {
            if (ifname.empty()) {
                const auto r = client.call("detach", {{"all", true}});
                print_done(g, r, "detached everywhere, pinned state removed, rlgated stopping");
            } else {
                const auto r = client.call("detach", {{"interface", ifname}});
                print_done(g, r, "detached from " + ifname);
            }
        } else if (ban_add->parsed()) {
            if (!cidr_file.empty()) {
                std::istringstream lines(read_config_text(cidr_file));
                for (std::string line; std::getline(lines, line);) {
                    line = line.substr(0, line.find('#'));
                    line.erase(0, line.find_first_not_of(" \t\r"));
                    line.erase(line.find_last_not_of(" \t\r") + 1);
                    if (!line.empty())
                        cidrs.push_back(line);
                }
            }
            if (cidrs.empty()) {
                std::cerr << "rlctl: ban add: give at least one CIDR (or --file)" << std::endl;
                return 2;
            }
            json args{{"reason", reason}};
            if (!ttl.empty()) {
                const auto ns = rlgate::config::parse_duration_ns(ttl);
                constexpr std::uint64_t kTenYears = 10ULL * 365 * 86400 * 1'000'000'000ULL;
                if (!ns || *ns < 1'000'000'000ULL || *ns > kTenYears) {
                    std::cerr << "rlctl: --ttl: '" << ttl
                              << "' is not a duration between 1s and 10 years (e.g. 90s, 10m, 2h, 7d)" << std::endl;
                    return 2;
                }
                args["ttl_s"] = *ns / 1'000'000'000ULL;
            }
            // Requests stay well below the socket's line limit: 20,000 CIDRs each.
            constexpr std::size_t kChunk = 20'000;
            json r{{"added", 0}, {"updated", 0}, {"failed", json::array()}};
            for (std::size_t i = 0; i < cidrs.size(); i += kChunk) {
                const auto last = std::min(cidrs.size(), i + kChunk);
                // One CIDR in all: the single form, whose refusal is the reply's error.
                if (cidrs.size() == 1)
                    args["cidr"] = cidrs.front();
                else
                    args["cidrs"] = std::vector<std::string>(cidrs.begin() + static_cast<std::ptrdiff_t>(i),
                                                             cidrs.begin() + static_cast<std::ptrdiff_t>(last));
                const auto part = client.call("ban.add", args);
                r["added"] = r["added"].get<std::uint64_t>() + part.value("added", std::uint64_t{0});
                r["updated"] = r["updated"].get<std::uint64_t>() + part.value("updated", std::uint64_t{0});
                for (const auto& f : part.value("failed", json::array()))
                    r["failed"].push_back(f);
                if (!part.value("failed", json::array()).empty())
                    break;  // the map is full or the input is bad: stop here
            }
            const auto failed = r.value("failed", json::array());
            for (const auto& f : failed)
                std::cerr << "rlctl: " << f.value("cidr", "") << ": " << f.value("error", "") << std::endl;
            const auto n = r.value("added", 0) + r.value("updated", 0);
            print_done(g, r, (cidrs.size() == 1 ? cidrs[0] : std::to_string(n) + " prefixes") + " banned" +
                                 (ttl.empty() ? " until removed" : " for " + ttl) +
                                 (r.value("updated", 0) ? " (" + std::to_string(r.value("updated", 0)) + " already banned: updated)" : ""));
            if (!failed.empty())
                return 1;
        } else if (ban_del->parsed()) {
            const auto r = client.call("ban.del", cidrs.size() == 1 ? json{{"cidr", cidrs.front()}} : json{{"cidrs", cidrs}});
            for (const auto& f : r.value("failed", json::array()))
                std::cerr << "rlctl: " << f.value("cidr", "") << ": " << f.value("error", "") << std::endl;
            print_done(g, r, cidrs.size() == 1 ? "ban of " + cidrs[0] + " lifted"
                                               : std::to_string(r.value("removed", 0)) + " bans lifted");
            if (!r.value("failed", json::array()).empty())
                return 1;
        } else if (ban_list->parsed()) {
            print(g, client.call("ban.list"), rlgate::cli::render_bans);
        } else if (ban_history->parsed()) {
            json args{{"limit", history_limit}};
            if (!cidr.empty())
                args["cidr"] = cidr;
            print(g, client.call("ban.history", args), rlgate::cli::render_violations);
        } else if (override_set->parsed()) {
            if (factor_opt->count() == 0 && pps_opt->count() == 0) {
                std::cerr << "rlctl: override set: give --factor or --pps" << std::endl;
                return 2;
            }
            json args{{"name", override_name}, {"reason", reason}};
            if (override_rule)
                args["target"] = "rule";
            if (factor_opt->count())
                args["factor"] = override_factor;
            else
                args["pps"] = override_pps;
            if (!override_for.empty()) {
                const auto ns = rlgate::config::parse_duration_ns(override_for);
                if (!ns || *ns < 1'000'000'000ULL || *ns > 366ULL * 86400 * 1'000'000'000ULL) {
                    std::cerr << "rlctl: --for: '" << override_for
                              << "' is not a duration between 1s and a year (e.g. 30m, 2h, 3d)" << std::endl;
                    return 2;
                }
                args["for_s"] = *ns / 1'000'000'000ULL;
            }
            const auto r = client.call("override.set", args);
            print(g, r, [](const json& res, std::ostream& out) {
                out << "override in force (policy generation " << res["generation"] << ")"
                    << (res["until"].is_string() ? ", until " + res["until"].get<std::string>() : std::string(", until cleared"))
                    << "\n";
            });
        } else if (override_list->parsed()) {
            print(g, client.call("override.list"), rlgate::cli::render_limits);
        } else if (override_clear->parsed()) {
            if (override_all == !override_name.empty()) {
                std::cerr << "rlctl: override clear: give NAME or --all" << std::endl;
                return 2;
            }
            const auto r = client.call("override.clear", override_all ? json{{"all", true}} : json{{"name", override_name}});
            print(g, r, [](const json& res, std::ostream& out) { out << res["cleared"] << " override(s) cleared\n"; });
        } else if (emergency->parsed()) {
            const auto r = client.call("emergency", {{"on", emergency_state == "on"}});
            print(g, r, [](const json& res, std::ostream& out) {
                out << "emergency mode " << (res.value("emergency", false) ? "ON" : "off") << " (policy generation "
                    << res["generation"] << ")\n";
            });
        } else if (fleet_status->parsed()) {
            print(g, client.call("fleet.status"), rlgate::cli::render_fleet);
        } else if (alerts->parsed()) {
            print(g, client.call("alerts"), rlgate::cli::render_alerts);
        } else if (insights->parsed()) {
            print(g, client.call("insights"), rlgate::cli::render_insights);
        } else if (source->parsed()) {
            print(g, client.call("source", {{"address", source_address}}), rlgate::cli::render_source);
        } else if (events->parsed()) {
            (void)follow;
            client.call("events.subscribe");
            unsigned seen = 0;
            client.stream(
                [&](const json& e) {
                    if (g.json_output)
                        std::cout << e.dump() << std::endl;
                    else
                        rlgate::cli::render_event(e, std::cout);
                    return max_events == 0 || ++seen < max_events;
                },
                std::chrono::milliseconds(quiet_ms));
        }
    } catch (const CliError& e) {
        if (g.json_output)
            std::cout << json{{"error", {{"code", e.daemon_code().empty() ? "unavailable" : e.daemon_code()},
                                         {"message", e.what()},
                                         {"details", e.details()}}}}
                             .dump(2)
                      << std::endl;
        std::cerr << "rlctl: " << e.what() << std::endl;
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "rlctl: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
