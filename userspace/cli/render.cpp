// SPDX-License-Identifier: BSD-2-Clause
#include "cli/render.hpp"

#include <string>

#include "cli/table.hpp"

namespace rlgate::cli {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key, const std::string& fallback = "-") {
    if (!j.contains(key) || j[key].is_null())
        return fallback;
    if (j[key].is_string())
        return j[key].get<std::string>();
    return j[key].dump();
}

// The member, or an empty value: never a temporary in a range-for.
const json& field(const json& j, const char* key) {
    static const json empty;
    const auto it = j.find(key);
    return it == j.end() ? empty : *it;
}

double num(const json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

std::string limit_text(const json& l) {
    if (!l.is_object() || l.empty())
        return "unlimited";
    std::string s;
    if (l.contains("pps"))
        s += human_count(num(l, "pps")) + " pps burst " + human_count(num(l, "burst"));
    if (l.contains("bytes_per_sec"))
        s += (s.empty() ? "" : ", ") + human_count(num(l, "bytes_per_sec")) + " B/s burst " +
             human_count(num(l, "burst_bytes")) + " B";
    return s;
}

}  // namespace

void render_status(const json& r, std::ostream& out) {
    out << "rlgated " << str(r, "version") << " (pid " << str(r, "pid") << "), up "
        << human_duration(num(r, "uptime_s")) << ", config " << str(r, "config") << "\n";
    out << "policy generation " << str(r, "policy_generation") << " from " << str(r, "policy_source")
        << (r.value("dry_run", false) ? ", DRY-RUN (drops are only counted)" : "") << "\n";
    out << "pinned state " << str(r, "pin_dir") << (r.value("adopted", false) ? " (adopted at start)" : " (created at start)")
        << "\n";
    if (r.contains("last_reload")) {
        const auto& l = r["last_reload"];
        out << "last reload: " << (l.value("ok", false) ? "ok" : "REJECTED") << " (" << str(l, "trigger") << " at "
            << str(l, "time") << ")";
        if (!l.value("ok", false) && l.contains("error")) {
            const auto& e = l["error"];
            out << ": " << str(e, "file", "") << (e.contains("field") ? ": " + str(e, "field") : "") << ": "
                << (e.contains("reason") ? str(e, "reason") : str(e, "message"));
        }
        out << "\n";
        for (const auto& w : field(l, "warnings"))
            out << "  warning: " << w.get<std::string>() << "\n";
    }
    out << "\n";
    Table ifaces({"INTERFACE", "IFINDEX", "MODE"});
    for (const auto& i : field(r, "interfaces"))
        ifaces.add({str(i, "name"), str(i, "ifindex"), str(i, "mode")});
    if (ifaces.empty())
        out << "no interface attached\n";
    else
        ifaces.print(out);
    out << "\n";
    Table maps({"MAP", "ENTRIES", "MAX", "FILL"});
    for (const auto& m : field(r, "maps")) {
        char fill[16];
        std::snprintf(fill, sizeof fill, "%.1f%%", 100.0 * num(m, "fill"));
        maps.add({str(m, "name"), str(m, "entries"), str(m, "max_entries"), fill});
    }
    maps.print(out);
    if (r.contains("limits")) {
        const auto& l = r["limits"];
        const auto& a = field(l, "adaptive");
        std::size_t active = 0;
        for (const auto& o : field(l, "overrides"))
            active += o.value("active", false);
        out << "\nlimits: adaptive " << (a.value("enabled", false) ? "level " + str(a, "level") + " of " + str(a, "max_level") : std::string("off"))
            << ", emergency " << (l.value("emergency", false) ? "ON" : "off") << ", " << active
            << " override(s) in force (rlctl override list)\n";
    }
}

void render_stats(const json& r, std::ostream& out) {
    Table totals({"", "PACKETS", "BYTES", "PPS"});
    for (const char* k : {"passed", "dropped"})
        if (r.contains(k))
            totals.add({k, human_count(num(r[k], "packets")), human_count(num(r[k], "bytes")), human_count(num(r[k], "pps"))});
    totals.print(out);
    if (r.value("dry_run", false))
        out << "dry-run: nothing is dropped; drop reasons are counted as passed\n";
    out << "\n";
    Table reasons({"REASON", "VERDICT", "PACKETS", "PPS"});
    for (const auto& e : field(r, "by_reason"))
        reasons.add({str(e, "reason"), str(e, "verdict"), human_count(num(e, "packets")), human_count(num(e, "pps"))});
    if (!reasons.empty())
        reasons.print(out);
    Table classes({"TIER", "RULE", "REASON", "VERDICT", "PACKETS", "PPS"});
    for (const auto& e : field(r, "by_class"))
        if (!e["tier"].is_null())
            classes.add({str(e, "tier"), str(e, "rule"), str(e, "reason"), str(e, "verdict"),
                         human_count(num(e, "packets")), human_count(num(e, "pps"))});
    if (!classes.empty()) {
        out << "\n";
        classes.print(out);
    }
}

void render_top(const json& r, std::ostream& out) {
    Table t({"SOURCE", "TIER", "RULE", "STATE", "PASSED/S", "DROPPED/S"});
    for (const auto& e : field(r, "talkers"))
        t.add({str(e, "source"), str(e, "tier"), str(e, "rule"), str(e, "state"), human_count(num(e, "passed_pps")),
               human_count(num(e, "dropped_pps"))});
    if (t.empty())
        out << "no traffic in the last " << human_duration(num(r, "interval_s")) << "\n";
    else
        t.print(out);
}

void render_source(const json& r, std::ostream& out) {
    Table t({"RULE", "ENTRY", "STATE", "TIER", "PASSED", "DROPPED", "LAST SEEN", "BURST FULL IN"});
    for (const auto& e : field(r, "entries")) {
        std::string entry = str(e, "entry");
        if (e.contains("shared_bucket"))
            entry += " (bucket " + str(e, "shared_bucket") + ")";
        const auto ago = [&](const char* k) {
            return e.contains(k) && e[k].is_number() ? human_duration(num(e, k)) + (std::string_view(k) == "last_seen_s" ? " ago" : "")
                                                     : std::string("-");
        };
        t.add({e["rule"].is_null() ? "none" : str(e, "rule"), entry, str(e, "state"), str(e, "tier"),
               human_count(num(e, "passed")), human_count(num(e, "dropped")), ago("last_seen_s"), ago("full_in_s")});
    }
    if (t.empty())
        out << str(r, "address") << " is not tracked: no packet seen, only its first (entries are made at the second), or its entry was evicted\n";
    else
        t.print(out);
}

void render_policy(const json& r, std::ostream& out) {
    out << "generation " << str(r, "generation") << " from " << str(r, "source")
        << (r.value("dry_run", false) ? " (dry-run)" : "") << (r.value("drop_malformed", false) ? ", malformed frames dropped" : "")
        << "\nglobal limit per interface: " << limit_text(field(r, "global")) << "\n\n";
    Table tiers({"TIER", "LIMIT PER SOURCE", "PREFIX V4/V6", "AUTO-BAN"});
    for (const auto& t : field(r, "tiers")) {
        std::string ab = "-";
        if (t.contains("autoban"))
            ab = str(t["autoban"], "drops") + " drops/" + human_duration(num(t["autoban"], "window_s")) + " -> " +
                 human_duration(num(t["autoban"], "ban_s"));
        tiers.add({str(t, "name") + (t.value("default", false) ? " (default)" : ""), limit_text(t["limit"]),
                   "/" + str(t, "prefix_v4") + " /" + str(t, "prefix_v6"), ab});
    }
    tiers.print(out);
    Table rules({"RULE", "PROTO", "PORTS", "LIMIT", "TIER OVERRIDES"});
    for (const auto& ru : field(r, "rules")) {
        std::string ports = "-";
        if (ru.contains("ports"))
            ports = ru["ports"][0] == ru["ports"][1] ? ru["ports"][0].dump() : ru["ports"][0].dump() + "-" + ru["ports"][1].dump();
        std::string overrides;
        for (const auto& [tier, l] : field(ru, "tiers").items())
            overrides += (overrides.empty() ? "" : "; ") + tier + ": " + limit_text(l);
        rules.add({str(ru, "name"), str(ru, "proto") + (ru.value("syn_only", false) ? " (SYN)" : ""), ports,
                   limit_text(ru["limit"]), overrides.empty() ? "-" : overrides});
    }
    if (!rules.empty()) {
        out << "\n";
        rules.print(out);
    }
    Table lists({"LIST", "PREFIX", "TIER", "ORIGIN"});
    for (const char* k : {"allow", "deny"})
        for (const auto& e : r.value(k, json::array()))
            lists.add({k, str(e, "cidr"), "-", str(e, "origin")});
    for (const auto& m : field(r, "members"))
        lists.add({"tier", str(m, "cidr"), str(m, "tier"), str(m, "origin")});
    if (!lists.empty()) {
        out << "\n";
        lists.print(out);
    }
}

void render_entries(const json& r, std::ostream& out) {
    Table t({"PREFIX", "ORIGIN"});
    for (const auto& e : field(r, "entries"))
        t.add({str(e, "cidr"), str(e, "origin")});
    if (t.empty())
        out << "(empty)\n";
    else
        t.print(out);
}

void render_tiers(const json& r, std::ostream& out) {
    Table t({"ID", "TIER", "LIMIT PER SOURCE", "MEMBERS", "PASSED", "DROPPED"});
    for (const auto& e : field(r, "tiers"))
        t.add({str(e, "id"), str(e, "name"), limit_text(e["limit"]), str(e, "members"),
               human_count(num(e, "passed_packets")), human_count(num(e, "dropped_packets"))});
    t.print(out);
}

void render_bans(const json& r, std::ostream& out) {
    Table t({"SOURCE", "ORIGIN", "REMAINING", "HITS", "OFFENCE", "REASON"});
    for (const auto& b : field(r, "bans"))
        t.add({str(b, "source"), str(b, "origin"),
               b["remaining_s"].is_null() ? "until removed" : human_duration(num(b, "remaining_s")),
               human_count(num(b, "hits")), num(b, "offence") > 0 ? str(b, "offence") : "-",
               str(b, "reason", "").empty() ? "-" : str(b, "reason")});
    if (t.empty())
        out << "no bans\n";
    else
        t.print(out);
}

void render_violations(const json& r, std::ostream& out) {
    Table t({"TIME", "SOURCE", "ORIGIN", "TIER", "OFFENCE", "BAN", "REASON"});
    for (const auto& v : field(r, "violations"))
        t.add({str(v, "time"), str(v, "source"), str(v, "origin"), str(v, "tier", "").empty() ? "-" : str(v, "tier"),
               str(v, "offence"), human_duration(num(v, "ban_s")), str(v, "reason")});
    if (t.empty())
        out << "no violations recorded\n";
    else
        t.print(out);
}

void render_alerts(const json& r, std::ostream& out) {
    Table t({"ALERT", "TYPE", "STATE", "VALUE", "SUBJECT", "SINCE"});
    for (const auto& a : field(r, "alerts")) {
        char value[32];
        std::snprintf(value, sizeof value, "%.3g", num(a, "value"));
        t.add({str(a, "name"), str(a, "type"), str(a, "state"), value, str(a, "subject", "").empty() ? "-" : str(a, "subject"),
               str(a, "since")});
    }
    if (t.empty())
        out << "no alert rules configured (config: alerts.rules)\n";
    else
        t.print(out);
    Table recent({"TIME", "ALERT", "STATUS", "VALUE", "SUBJECT"});
    for (const auto& n : field(r, "recent")) {
        char value[32];
        std::snprintf(value, sizeof value, "%.3g", num(n, "value"));
        recent.add({str(n, "at"), str(n, "alert"), str(n, "status"), value, str(n, "subject", "").empty() ? "-" : str(n, "subject")});
    }
    if (!recent.empty()) {
        out << "\n";
        recent.print(out);
    }
    Table hooks({"WEBHOOK", "WAITING", "DELIVERED", "FAILED ATTEMPTS", "DROPPED"});
    for (const auto& w : field(r, "webhooks"))
        hooks.add({str(w, "url"), str(w, "waiting"), str(w, "delivered"), str(w, "failed_attempts"), str(w, "dropped")});
    if (!hooks.empty()) {
        out << "\n";
        hooks.print(out);
    }
}

void render_limits(const json& r, std::ostream& out) {
    const auto& a = field(r, "adaptive");
    if (a.value("enabled", false)) {
        char load[32];
        std::snprintf(load, sizeof load, "%.2f", num(a, "load"));
        out << "adaptive: level " << str(a, "level") << " of " << str(a, "max_level") << ", load " << load << " ("
            << str(a, "cause") << ")\n";
    } else {
        out << "adaptive: off (config: adaptive)\n";
    }
    out << "emergency: " << (r.value("emergency", false) ? "ON" : "off") << "\n\n";
    Table tiers({"TIER", "PPS NOW", "FACTOR"});
    for (const auto& t : field(r, "tiers")) {
        char factor[32];
        std::snprintf(factor, sizeof factor, "%.3g", num(t, "factor"));
        tiers.add({str(t, "tier"), str(t, "pps"), factor});
    }
    tiers.print(out);
    Table overrides({"TARGET", "NAME", "SET TO", "ORIGIN", "ACTIVE", "UNTIL", "REASON"});
    for (const auto& o : field(r, "overrides")) {
        std::string to = o["factor"].is_number() ? "x" + str(o, "factor") : str(o, "pps") + " pps";
        overrides.add({str(o, "target"), str(o, "name"), to, str(o, "origin"), o.value("active", false) ? "yes" : "no",
                       str(o, "until", "cleared"), str(o, "reason", "").empty() ? "-" : str(o, "reason")});
    }
    out << "\n";
    if (overrides.empty())
        out << "no override\n";
    else
        overrides.print(out);
    Table changes({"AT", "LEVEL", "TIER", "FACTOR", "LOAD", "CAUSE"});
    const auto& list = field(a, "changes");
    for (std::size_t i = list.size(); i-- > 0 && list.size() - i <= 10;) {
        const auto& c = list[i];
        char factor[32], load[32];
        std::snprintf(factor, sizeof factor, "%.3g", num(c, "factor"));
        std::snprintf(load, sizeof load, "%.2f", num(c, "load"));
        changes.add({str(c, "at"), str(c, "level"), str(c, "tier"), factor, load, str(c, "cause")});
    }
    if (!changes.empty()) {
        out << "\nlast changes of the controller, newest first:\n";
        changes.print(out);
    }
}

void render_fleet(const json& r, std::ostream& out) {
    if (!r.value("enabled", false)) {
        out << "fleet mode is off (config: fleet.redis); bans stay on this host\n";
        return;
    }
    const auto& redis = field(r, "redis");
    out << "host:          " << str(r, "host") << "\n"
        << "redis:         " << str(redis, "address") << " "
        << (redis.value("up", false) && redis.value("subscribed", false) ? "up" : "DOWN") << " (reconnects "
        << str(redis, "reconnects") << ")\n"
        << "last sync:     " << str(r, "last_sync", "never") << "\n"
        << "last message:  " << str(r, "last_message", "never") << "\n"
        << "published:     " << str(r, "published") << " (kept local over the budget: " << str(r, "publish_dropped")
        << ", waiting: " << str(r, "outbox") << ")\n"
        << "applied:       " << str(r, "applied") << " from peers\n";
    Table t({"PEER", "LAST SEEN", "AGE", "VERSION", "PUBLISHED", "APPLIED"});
    for (const auto& p : field(r, "peers"))
        t.add({str(p, "host") + (p.value("self", false) ? " (this host)" : ""), str(p, "last_seen"),
               human_duration(num(p, "age_s")), str(p, "version"), str(p, "published"), str(p, "applied")});
    out << "\n";
    if (t.empty())
        out << "no peer has written a heartbeat yet\n";
    else
        t.print(out);
}

void render_insights(const json& r, std::ostream& out) {
    Table t({"TIER", "RULE", "LIMITED", "PASSED", "SHARE", "ADVICE"});
    for (const auto& i : field(r, "limits")) {
        char share[16];
        std::snprintf(share, sizeof share, "%.1f%%", 100 * num(i, "limited_share"));
        t.add({str(i, "tier"), str(i, "rule"), human_count(num(i, "limited")), human_count(num(i, "passed")), share,
               str(i, "advice")});
    }
    if (t.empty())
        out << "no limit stands out yet (needs at least 100 packets per tier and rule)\n";
    else
        t.print(out);
    Table o({"SOURCE", "VIOLATIONS"});
    for (const auto& c : field(r, "top_offenders"))
        o.add({str(c, "source"), str(c, "violations")});
    if (!o.empty()) {
        out << "\ntop offenders\n";
        o.print(out);
    }
    std::string idle;
    for (const auto& tname : field(r, "idle_tiers"))
        idle += (idle.empty() ? "" : ", ") + tname.get<std::string>();
    if (!idle.empty())
        out << "\ntiers without traffic: " << idle << "\n";
}

void render_event(const json& e, std::ostream& out) {
    if (str(e, "event") == "alert") {
        out << str(e, "time") << "  alert  " << str(e, "alert") << " " << str(e, "status") << " value=" << str(e, "value")
            << (str(e, "subject", "").empty() ? "" : " subject=" + str(e, "subject")) << std::endl;
        return;
    }
    out << str(e, "time") << "  " << str(e, "event") << "  " << str(e, "source") << "  reason=" << str(e, "reason")
        << " tier=" << str(e, "tier") << " rule=" << str(e, "rule") << " if=" << str(e, "interface");
    if (e.contains("ban_s"))
        out << " drops=" << str(e, "drops") << " ban=" << human_duration(num(e, "ban_s"));
    out << std::endl;
}

}  // namespace rlgate::cli
