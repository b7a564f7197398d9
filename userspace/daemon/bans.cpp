// SPDX-License-Identifier: BSD-2-Clause
// Bans in rlgated: manual bans, the program's auto-bans recorded and
// escalated for repeat offenders, reports from rlgate-l7, reaping, the
// violation log, and the state file that carries all of it across restarts
// and reboots.
#include <grp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "core/stats/names.hpp"
#include "core/stats/top_talkers.hpp"
#include "dataplane/bpf_error.hpp"
#include "daemon/atomic_file.hpp"
#include "daemon/daemon.hpp"
#include "daemon/time_format.hpp"

namespace rlgate::daemon {

namespace fs = std::filesystem;
using control::ProtocolError;
using nlohmann::json;
namespace code = control::code;

namespace {

constexpr std::uint64_t kMaxTtlNs = 10ULL * 365 * 86'400 * 1'000'000'000ULL;
constexpr std::size_t kMaxReasonLength = 256;
constexpr std::size_t kMaxBatch = 50'000;  // rlctl sends bigger lists in chunks


std::string ban_state_path(const config::Config& c) { return c.daemon.state_dir + "/bans.json"; }

net::Cidr parse_prefix(const std::string& text) {
    std::string err;
    auto c = net::Cidr::parse(text, &err);
    if (!c)
        throw ProtocolError(code::invalid_argument, text + ": " + err);
    return *c;
}

// The CIDRs of a request: "cidr" or a "cidrs" array.
std::vector<std::string> cidr_args(const json& args) {
    std::vector<std::string> out;
    if (auto it = args.find("cidrs"); it != args.end()) {
        if (!it->is_array())
            throw ProtocolError(code::invalid_argument, "\"cidrs\" must be an array of strings");
        if (it->size() > kMaxBatch)
            throw ProtocolError(code::invalid_argument, "at most " + std::to_string(kMaxBatch) + " CIDRs per request");
        for (const auto& c : *it) {
            if (!c.is_string())
                throw ProtocolError(code::invalid_argument, "\"cidrs\" must be an array of strings");
            out.push_back(c.get<std::string>());
        }
    } else {
        out.push_back(control::arg_string(args, "cidr"));
    }
    return out;
}

std::string reason_arg(const json& args) {
    auto r = control::arg_optional_string(args, "reason").value_or("");
    if (r.size() > kMaxReasonLength)
        throw ProtocolError(code::invalid_argument, "reason longer than " + std::to_string(kMaxReasonLength) + " bytes");
    for (char c : r)
        if (static_cast<unsigned char>(c) < 0x20)
            throw ProtocolError(code::invalid_argument, "reason contains control characters");
    return r;
}

}  // namespace

std::int64_t Daemon::now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const net::Cidr* Daemon::allowlisted(const net::Cidr& prefix) const {
    for (const auto& a : effective_.allow)
        if (a.contains(prefix))
            return &a;
    return nullptr;
}

const policy::Tier* Daemon::tier_of(const net::Cidr& prefix) const {
    const policy::TierMember* best = nullptr;
    for (const auto& m : effective_.members)
        if (m.prefix.contains(prefix) && (!best || m.prefix.prefix > best->prefix.prefix))
            best = &m;
    const std::string name = best ? best->tier : (effective_.default_tier.empty() && !effective_.tiers.empty()
                                                      ? effective_.tiers.front().name
                                                      : effective_.default_tier);
    for (const auto& t : effective_.tiers)
        if (t.name == name)
            return &t;
    return nullptr;
}

void Daemon::start_bans() {
    if (!config_.bans.violation_log_path.empty()) {
        violation_log_ = spdlog::basic_logger_mt("violations", config_.bans.violation_log_path);
        violation_log_->set_pattern(config_.bans.violation_log_format == "json" ? "%v" : "%Y-%m-%dT%H:%M:%S%z %v");
        violation_log_->flush_on(spdlog::level::info);
    }
    ban_book_ = bans::BanBook(config_.bans.history_max);
    load_ban_state();
    if (!dataplane_->map_adopted("rl_bans")) {
        // A fresh ban map (a reboot, --cleanup, a lost pin): the state file is all that is left of the bans.
        const auto now = now_ms();
        std::size_t restored = 0;
        for (const auto& [prefix, rec] : std::map(ban_book_.records())) {
            if (rec.expires_ms && *rec.expires_ms <= now) {
                ban_book_.erase(prefix);
                continue;
            }
            const auto ttl = rec.expires_ms ? std::chrono::milliseconds(*rec.expires_ms - now) : std::chrono::milliseconds(0);
            const auto origin = rec.origin == "kernel" ? RL_ORIGIN_KERNEL
                                : rec.origin == "l7"   ? RL_ORIGIN_L7
                                : rec.origin == "peer" ? RL_ORIGIN_PEER
                                                       : RL_ORIGIN_MANUAL;
            try {
                dataplane_->add_ban(prefix, ttl, 0, origin);
                auto restored_rec = rec;
                restored_rec.kernel_created_ns = 0;  // a new kernel entry: adopted by the next sync
                ban_book_.put(std::move(restored_rec));
                ++restored;
            } catch (const std::exception& e) {
                spdlog::error("cannot restore the ban of {}: {}", prefix.to_string(), e.what());
                ban_book_.erase(prefix);
            }
        }
        if (restored)
            spdlog::info("restored {} bans from {}", restored, ban_state_path(config_));
        bans_dirty_ = true;
    }
    synced_ban_gen_ = dataplane_->ban_generation() - 1;  // force the first sync
    sync_bans(true);
    schedule_ban_sync();
}

void Daemon::load_ban_state() {
    const auto path = ban_state_path(config_);
    std::error_code ec;
    if (!fs::exists(path, ec))
        return;
    try {
        ban_book_ = bans::BanBook::from_json(json::parse(read_file(path)), config_.bans.history_max);
        spdlog::info("ban state: {} bans, {} violations from {}", ban_book_.records().size(), ban_book_.history().size(),
                     path);
    } catch (const std::exception& e) {
        const std::string aside = path + ".corrupt-" + std::to_string(::time(nullptr));
        fs::rename(path, aside, ec);
        spdlog::error("ban state {} is unreadable ({}); set aside as {}; the kernel's bans stay in force", path,
                      e.what(), aside);
        ban_book_ = bans::BanBook(config_.bans.history_max);
    }
}

void Daemon::save_ban_state() {
    try {
        write_file_atomically(ban_state_path(config_), ban_book_.to_json().dump() + "\n");
        bans_dirty_ = false;
        last_ban_save_ = std::chrono::steady_clock::now();
    } catch (const std::exception& e) {
        // The old file stays intact; try again at the next sync.
        spdlog::error("cannot save the ban state: {}", e.what());
    }
}

void Daemon::schedule_ban_sync() {
    ban_timer_.expires_after(std::chrono::seconds(1));
    ban_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec)
            return;
        try {
            sync_bans(false);
        } catch (const std::exception& e) {
            spdlog::error("ban sync: {}", e.what());
        }
        if (bans_dirty_)
            save_ban_state();
        schedule_ban_sync();
    });
}

void Daemon::log_violation(const bans::Violation& v) {
    ++violations_total_[v.origin];
    if (config_.bans.violation_log_format == "json") {
        const json j{{"type", "violation"},  {"time", iso8601_ms(v.time_ms)}, {"source", v.source.to_string()},
                     {"origin", v.origin},   {"tier", v.tier},                {"rule", v.rule},
                     {"reason", v.reason},   {"offence", v.offence},          {"ban_s", static_cast<double>(v.ban_ms) / 1e3},
                     {"drops", v.drops}};
        (violation_log_ ? violation_log_ : spdlog::default_logger())->warn("{}", j.dump());
    } else {
        (violation_log_ ? violation_log_ : spdlog::default_logger())
            ->warn("violation source={} origin={} tier={} rule={} offence={} ban={}s drops={} reason=\"{}\"",
                   v.source.to_string(), v.origin, v.tier.empty() ? "-" : v.tier, v.rule.empty() ? "-" : v.rule,
                   v.offence, static_cast<double>(v.ban_ms) / 1e3, v.drops, v.reason);
    }
}

void Daemon::sync_bans(bool force) {
    // When to look again is decided on the program's clock (jiffies), like the
    // expiry itself: a step of the wall clock neither delays nor hastens reaping.
    const auto gen = dataplane_->ban_generation();
    const auto clock = dataplane_->clock();
    if (!force && gen == synced_ban_gen_ && (next_expiry_rl_ns_ == 0 || clock.rl_now_ns < next_expiry_rl_ns_))
        return;
    const auto now = now_ms();
    auto wall_of = [&](std::uint64_t rl_ns) {
        return now - static_cast<std::int64_t>((clock.rl_now_ns - std::min(rl_ns, clock.rl_now_ns)) / 1'000'000);
    };
    std::set<net::Cidr> in_kernel;
    std::uint64_t next_expiry_rl = 0;
    for (const auto& b : dataplane_->list_bans()) {
        const auto& v = b.value;
        if (v.expires_ns && v.expires_ns <= clock.rl_now_ns) {
            dataplane_->remove_ban(b.prefix);
            bans_dirty_ |= ban_book_.erase(b.prefix);
            spdlog::info("ban of {} expired", b.prefix.to_string());
            continue;
        }
        in_kernel.insert(b.prefix);
        std::uint64_t expires_rl = v.expires_ns;
        std::int64_t expires_ms = v.expires_ns ? wall_of(v.created_ns) + static_cast<std::int64_t>((v.expires_ns - v.created_ns) / 1'000'000) : 0;
        const auto* known = ban_book_.find(b.prefix);
        if (known && known->kernel_created_ns == 0) {  // ours (rlctl, L7, restore): learn its kernel identity
            auto adopted = *known;
            adopted.kernel_created_ns = v.created_ns;
            ban_book_.put(std::move(adopted));
            bans_dirty_ = true;
        } else if (!known || known->kernel_created_ns != v.created_ns) {  // new, or a new ban at the same prefix
            bans::BanRecord rec{.prefix = b.prefix,
                                .origin = std::string(stats::origin_name(v.origin)),
                                .reason = "",
                                .tier = {},
                                .created_ms = wall_of(v.created_ns),
                                .expires_ms = {},
                                .offence = 0};
            if (v.origin == RL_ORIGIN_KERNEL && v.tier < effective_.tiers.size()) {
                // A new auto-ban: record the violation, lengthen the ban of a repeat offender.
                const auto& tier = effective_.tiers[v.tier];
                const auto& rule = tier.autoban;
                const auto earlier = ban_book_.offences_since(
                    b.prefix, rec.created_ms - static_cast<std::int64_t>(rule.memory_ns / 1'000'000));
                const auto ban_ns = bans::escalated_ban_ns(rule, earlier);
                if (v.expires_ns && v.expires_ns - v.created_ns < ban_ns) {  // lengthen, never shorten
                    rl_ban_value longer = v;
                    longer.expires_ns = v.created_ns + ban_ns;
                    dataplane_->put_ban(b.prefix, longer);
                    expires_rl = longer.expires_ns;
                    expires_ms = rec.created_ms + static_cast<std::int64_t>(ban_ns / 1'000'000);
                }
                rec.tier = tier.name;
                rec.offence = earlier + 1;
                const std::string rule_name = v.rule < rule_names_.size() ? rule_names_[v.rule] : "none";
                // The rate that got it banned: over its limit by at least `drops` packets in the window.
                rec.reason = "rate: over the " + tier.name + " limit" + (v.rule ? " of rule " + rule_name : std::string()) +
                             " by " + std::to_string(rule.drops) + " packets within " +
                             std::to_string(rule.window_ns / 1'000'000'000ULL) + " s";
                bans::Violation viol{.source = b.prefix,
                                     .origin = "kernel",
                                     .tier = tier.name,
                                     .rule = rule_name,
                                     .reason = rec.reason,
                                     .time_ms = rec.created_ms,
                                     .ban_ms = ban_ns / 1'000'000,
                                     .offence = rec.offence,
                                     .drops = rule.drops};
                log_violation(viol);
                ban_book_.add_violation(std::move(viol));
            }
            if (v.expires_ns)
                rec.expires_ms = expires_ms;
            if (v.origin == RL_ORIGIN_KERNEL)
                share_ban(b.prefix, "kernel", rec.reason, rec.expires_ms);
            rec.kernel_created_ns = v.created_ns;
            ban_book_.put(std::move(rec));
            bans_dirty_ = true;
        }
        if (expires_rl && (next_expiry_rl == 0 || expires_rl < next_expiry_rl))
            next_expiry_rl = expires_rl;
    }
    // Records of bans removed behind our back (bpftool) or reaped while we were away.
    for (auto it = ban_book_.records().begin(); it != ban_book_.records().end();) {
        const auto prefix = it++->first;
        if (!in_kernel.contains(prefix))
            bans_dirty_ |= ban_book_.erase(prefix);
    }
    std::uint64_t memory_ns = 86'400'000'000'000ULL;
    for (const auto& t : effective_.tiers)
        memory_ns = std::max(memory_ns, t.autoban.memory_ns);
    const auto before = ban_book_.history().size();
    ban_book_.prune(now - static_cast<std::int64_t>(memory_ns / 1'000'000));
    bans_dirty_ |= ban_book_.history().size() != before;
    next_expiry_rl_ns_ = next_expiry_rl;
    synced_ban_gen_ = dataplane_->ban_generation();
    // Violations reach the disk at once, at most five times a second under an auto-ban storm.
    if (bans_dirty_ && std::chrono::steady_clock::now() - last_ban_save_ > std::chrono::milliseconds(200))
        save_ban_state();
}

Daemon::BanResult Daemon::ban(const net::Cidr& prefix, std::uint64_t ttl_ns, const std::string& origin,
                              const std::string& reason) {
    if (const auto* allow = allowlisted(prefix))
        throw ProtocolError(code::invalid_argument, "refused: " + prefix.to_string() + " is on the allowlist (" +
                                                        allow->to_string() + "); the allowlist always wins over bans");
    if (ttl_ns > kMaxTtlNs)
        throw ProtocolError(code::invalid_argument, "ttl above 10 years; omit it for a ban until removed");
    const auto rl_origin = origin == "l7" ? RL_ORIGIN_L7 : origin == "peer" ? RL_ORIGIN_PEER : RL_ORIGIN_MANUAL;
    BanResult out;
    out.updated = ban_book_.find(prefix) != nullptr;
    out.ttl_ns = ttl_ns;
    try {
        dataplane_->add_ban(prefix, std::chrono::nanoseconds(ttl_ns), 0, rl_origin);
    } catch (const BpfError& e) {
        throw ProtocolError(code::failed, e.what());
    }
    const auto now = now_ms();
    ban_book_.put({.prefix = prefix,
                   .origin = origin,
                   .reason = reason,
                   .tier = {},
                   .created_ms = now,
                   .expires_ms = ttl_ns ? std::optional(now + static_cast<std::int64_t>(ttl_ns / 1'000'000)) : std::nullopt,
                   .offence = 0,
                   .kernel_created_ns = 0});
    bans_dirty_ = true;
    if (origin != "peer")
        share_ban(prefix, origin, reason,
                  ttl_ns ? std::optional(now + static_cast<std::int64_t>(ttl_ns / 1'000'000)) : std::nullopt);
    return out;
}

json Daemon::cmd_ban(const std::string& cmd, const json& args) {
    if (cmd == "ban.list") {
        sync_bans(true);
        std::map<net::Cidr, std::uint64_t> hits;
        std::set<unsigned> lengths;
        for (const auto& [p, r] : ban_book_.records())
            lengths.insert(p.prefix128());
        for (const auto& e : dataplane_->snapshot_buckets()) {
            if (e.value.state != RL_STATE_BANNED)
                continue;
            const auto src = stats::source_of(e.key);
            for (auto it_len = lengths.rbegin(); it_len != lengths.rend(); ++it_len) {  // most specific first, as the kernel
                const unsigned len = *it_len;
                if (len > src.prefix128())
                    continue;
                net::Cidr c{net::mask_address(src.address, len), src.address.v4 ? len - 96 : len};
                c.address.v4 = src.address.v4;
                if (auto it = ban_book_.records().find(c); it != ban_book_.records().end()) {
                    hits[c] += e.value.window_drops;
                    break;
                }
            }
        }
        // Remaining time from the kernel's own expiry (rl time): right across wall-clock steps.
        const auto clock = dataplane_->clock();
        std::map<net::Cidr, std::uint64_t> kernel_expiry;
        for (const auto& b : dataplane_->list_bans())
            kernel_expiry[b.prefix] = b.value.expires_ns;
        auto remaining = [&](const net::Cidr& p, const bans::BanRecord& r) -> json {
            const auto it = kernel_expiry.find(p);
            if (it == kernel_expiry.end())
                return r.expires_ms ? json(0.0) : json(nullptr);
            if (it->second == 0)
                return nullptr;  // until removed
            return static_cast<double>(it->second - std::min(it->second, clock.rl_now_ns)) / 1e9;
        };
        json out = json::array();
        for (const auto& [p, r] : ban_book_.records())
            out.push_back({{"source", p.to_string()},
                           {"origin", r.origin},
                           {"reason", r.reason},
                           {"tier", r.tier.empty() ? json(nullptr) : json(r.tier)},
                           {"created", iso8601_ms(r.created_ms)},
                           {"remaining_s", remaining(p, r)},
                           {"offence", r.offence},
                           {"hits", hits[p]}});
        return {{"bans", out}, {"capacity", config_.maps.bans}};
    }
    if (cmd == "ban.history") {
        const auto filter = control::arg_optional_string(args, "cidr");
        const auto limit = control::arg_uint(args, "limit", 100);
        std::optional<net::Cidr> only;
        if (filter)
            only = parse_prefix(*filter);
        json out = json::array();
        const auto& h = ban_book_.history();
        for (auto it = h.rbegin(); it != h.rend() && out.size() < limit; ++it)
            if (!only || only->contains(it->source))
                out.push_back({{"source", it->source.to_string()},
                               {"origin", it->origin},
                               {"tier", it->tier},
                               {"rule", it->rule},
                               {"reason", it->reason},
                               {"time", iso8601_ms(it->time_ms)},
                               {"ban_s", static_cast<double>(it->ban_ms) / 1e3},
                               {"offence", it->offence},
                               {"drops", it->drops}});
        return {{"violations", out}};
    }
    const auto texts = cidr_args(args);
    std::vector<net::Cidr> prefixes;
    prefixes.reserve(texts.size());
    for (const auto& t : texts)
        prefixes.push_back(parse_prefix(t));  // all or nothing: one bad CIDR refuses the request
    json failed = json::array();
    std::size_t done = 0, updated = 0;
    // "cidr" is one request: its refusal is the reply's error. "cidrs" is a
    // batch (of any size, e.g. the last chunk of a file): refusals go to failed[].
    const bool single = !args.contains("cidrs");
    if (cmd == "ban.add") {
        const auto ttl_s = control::arg_uint(args, "ttl_s", 0);
        if (ttl_s > kMaxTtlNs / 1'000'000'000ULL)
            throw ProtocolError(code::invalid_argument, "ttl above 10 years; omit it for a ban until removed");
        const auto reason = reason_arg(args);
        for (const auto& p : prefixes) {
            try {
                const auto r = ban(p, ttl_s * 1'000'000'000ULL, "manual", reason);
                ++done;
                updated += r.updated;
            } catch (const ProtocolError& e) {
                if (single)
                    throw;
                failed.push_back({{"cidr", p.to_string()}, {"error", e.what()}});
                if (failed.size() > 100)
                    break;  // the map is full or the input is bad: stop early, report what happened
            }
        }
        if (done)
            spdlog::info("{} ban{} added by rlctl ({} updated){}", done, done == 1 ? "" : "s", updated,
                         prefixes.size() == 1 ? ": " + prefixes[0].to_string() : "");
        save_ban_state();
        return {{"added", done - updated}, {"updated", updated}, {"failed", failed}, {"ttl_s", ttl_s}};
    }
    if (cmd == "ban.del") {
        for (const auto& p : prefixes) {
            bool removed = false;
            try {
                removed = dataplane_->remove_ban(p);
            } catch (const std::exception& e) {
                failed.push_back({{"cidr", p.to_string()}, {"error", e.what()}});
                continue;
            }
            ban_book_.erase(p);
            share_unban(p);  // even if not banned here: the operator means the fleet
            if (removed)
                ++done;
            else if (single)
                throw ProtocolError(code::not_found, p.to_string() + " is not banned");
            else
                failed.push_back({{"cidr", p.to_string()}, {"error", "not banned"}});
        }
        save_ban_state();
        return {{"removed", done}, {"failed", failed}};
    }
    throw ProtocolError(code::unknown_command, "unknown command '" + cmd + "'");
}

void Daemon::open_escalation_socket() {
    const auto& path = config_.daemon.escalation_socket;
    if (path.empty())
        return;
    int gid = -1;
    if (!config_.daemon.escalation_group.empty()) {
        if (const group* g = ::getgrnam(config_.daemon.escalation_group.c_str()))
            gid = static_cast<int>(g->gr_gid);
        else
            spdlog::warn("escalation group '{}' does not exist: the escalation socket admits root only",
                         config_.daemon.escalation_group);
    }
    if (gid >= 0) {
        // Members must reach the socket: its directory becomes theirs to traverse.
        const auto dir = fs::path(path).parent_path();
        if (dir == fs::path(config_.daemon.socket_path).parent_path()) {
            [[maybe_unused]] int rc = ::chown(dir.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid));
        }
    }
    auto admit = [gid](const ucred& peer) -> std::string {
        if (peer.uid == 0 || peer.uid == ::geteuid() || (gid >= 0 && peer.gid == static_cast<gid_t>(gid)))
            return {};
        if (gid >= 0) {  // supplementary groups of the peer
            std::ifstream status("/proc/" + std::to_string(peer.pid) + "/status");
            for (std::string line; std::getline(status, line);)
                if (line.starts_with("Groups:")) {
                    std::istringstream ids(line.substr(7));
                    for (long id; ids >> id;)
                        if (id == gid)
                            return {};
                }
        }
        return "permission denied: the escalation socket admits root and the escalation group only";
    };
    try {
        escalation_ = std::make_unique<ControlServer>(
            io_, path,
            [this](const control::Request& req, ControlServer::Reply reply, std::function<void()>, const ucred& peer) {
                handle_escalation(req, std::move(reply), "uid " + std::to_string(peer.uid));  // one budget per user
            },
            admit, gid >= 0 ? 0660U : 0600U, gid);
    } catch (const std::exception& e) {
        spdlog::error("escalation socket {} unavailable: {}", path, e.what());
    }
}

void Daemon::handle_escalation(const control::Request& req, ControlServer::Reply reply, const std::string& peer) {
    // Everything but `escalate` (which has the configured budget) shares a fixed,
    // generous one per user: rlgate-l7 reports every few seconds and asks for the
    // policy as often, a peer looping on them must not busy the daemon's one thread.
    if (req.command != "escalate") {
        constexpr std::uint64_t kOtherPerSec = 20, kOtherBurst = 40;
        auto [other, fresh] = l7_other_budgets_.try_emplace(peer, kOtherPerSec, kOtherBurst);
        const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        if (!other->second.try_take(now))
            throw ProtocolError(code::rate_limited, "too many requests on the escalation socket: at most " +
                                                        std::to_string(kOtherPerSec) + "/s besides escalate");
    }
    if (req.command == "version") {
        reply(control::make_result(req.id, {{"version", RLGATE_VERSION}, {"protocol", control::kProtocolVersion}}));
        return;
    }
    if (req.command == "report") {  // rlgate-l7's decision counts and Redis health
        handle_l7_report(req.args, peer);
        reply(control::make_result(req.id, {{"accepted", true}}));
        return;
    }
    if (req.command == "policy") {  // read-only: allowlist and tier membership, for rlgate-l7
        json allow = json::array(), members = json::array();
        for (const auto& c : effective_.allow)
            allow.push_back(c.to_string());
        for (const auto& m : effective_.members)
            members.push_back({{"cidr", m.prefix.to_string()}, {"tier", m.tier}});
        json factors = json::object();  // tiers whose limits are scaled now (overrides, emergency, adaptive)
        const json scaling = scaling_json();  // a local: a range-for over a temporary's member dangles
        for (const auto& t : scaling["tiers"])
            if (t["factor"].get<double>() != 1.0)
                factors[t["tier"].get<std::string>()] = t["factor"];
        reply(control::make_result(req.id, {{"generation", dataplane_->policy_generation()},
                                            {"allow", std::move(allow)},
                                            {"members", std::move(members)},
                                            {"factors", std::move(factors)}}));
        return;
    }
    if (req.command != "escalate")
        throw ProtocolError(code::unknown_command,
                            "the escalation socket serves only \"escalate\", \"report\", \"policy\" and \"version\"");
    auto [it, inserted] = l7_budgets_.try_emplace(peer, config_.bans.l7_reports_per_sec, config_.bans.l7_burst);
    const auto mono = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    if (!it->second.try_take(mono))
        throw ProtocolError(code::rate_limited, "too many reports: at most " + std::to_string(config_.bans.l7_reports_per_sec) +
                                                "/s (burst " + std::to_string(config_.bans.l7_burst) + ")");
    const auto prefix = parse_prefix(control::arg_string(req.args, "source"));
    if (prefix.prefix128() < (prefix.address.v4 ? 96U + 24U : 48U))
        throw ProtocolError(code::invalid_argument,
                            "source " + prefix.to_string() + " is too broad for a report (at most a /24 or an IPv6 /48)");
    auto reason = reason_arg(req.args);
    if (reason.empty())
        throw ProtocolError(code::invalid_argument, "missing argument \"reason\"");
    std::uint64_t ttl_ns = config_.bans.l7_default_ttl_ns;
    if (req.args.contains("ttl_s"))
        ttl_ns = std::min<std::uint64_t>(std::min<std::uint64_t>(control::arg_uint(req.args, "ttl_s", 0), kMaxTtlNs / 1'000'000'000ULL) *
                                             1'000'000'000ULL,
                                         config_.bans.l7_max_ttl_ns);
    if (ttl_ns == 0)
        throw ProtocolError(code::invalid_argument, "ttl_s must be positive");

    // Repeat offenders get longer bans, as with auto-bans, within the L7 cap.
    policy::AutoBan rule;
    if (const auto* t = tier_of(prefix))
        rule = t->autoban;
    rule.ban_ns = ttl_ns;
    rule.max_ban_ns = std::max(config_.bans.l7_max_ttl_ns, ttl_ns);
    const auto now = now_ms();
    const auto earlier = ban_book_.offences_since(prefix, now - static_cast<std::int64_t>(rule.memory_ns / 1'000'000));
    auto ban_ns = bans::escalated_ban_ns(rule, earlier);
    if (const auto* existing = ban_book_.find(prefix)) {
        if (!existing->expires_ms)
            ban_ns = 0;  // never shorten a ban until removed
        else if (*existing->expires_ms - now > static_cast<std::int64_t>(ban_ns / 1'000'000))
            ban_ns = static_cast<std::uint64_t>(*existing->expires_ms - now) * 1'000'000ULL;
    }
    const auto* in_force = ban_book_.find(prefix);
    const bool longer_in_force = in_force && (!in_force->expires_ms ||
                                              *in_force->expires_ms - now >= static_cast<std::int64_t>(ban_ns / 1'000'000));
    if (ban_ns != 0 && !longer_in_force)
        ban(prefix, ban_ns, "l7", reason);  // a ban in force for at least as long keeps its origin and reason
    if (const auto* rec = ban_book_.find(prefix)) {
        auto counted = *rec;
        counted.offence = earlier + 1;
        ban_book_.put(std::move(counted));
    }
    bans::Violation v{.source = prefix,
                      .origin = "l7",
                      .tier = {},
                      .rule = {},
                      .reason = reason,
                      .time_ms = now,
                      .ban_ms = ban_ns / 1'000'000,
                      .offence = earlier + 1,
                      .drops = 0};
    if (const auto* t = tier_of(prefix))
        v.tier = t->name;
    log_violation(v);
    ban_book_.add_violation(std::move(v));
    bans_dirty_ = true;
    reply(control::make_result(req.id, {{"source", prefix.to_string()},
                                        {"ban_s", ban_ns ? json(static_cast<double>(ban_ns) / 1e9) : json(nullptr)},
                                        {"offence", earlier + 1}}));
}

}  // namespace rlgate::daemon
