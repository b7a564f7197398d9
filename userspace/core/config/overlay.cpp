// SPDX-License-Identifier: BSD-2-Clause
#include "core/config/overlay.hpp"

#include <algorithm>

namespace rlgate::config {
namespace {

using nlohmann::json;

template <typename T>
bool erase_value(std::vector<T>& v, const T& x) {
    const auto it = std::find(v.begin(), v.end(), x);
    if (it == v.end())
        return false;
    v.erase(it);
    return true;
}

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

const std::vector<net::Cidr>& base_list(const policy::Policy& p, ListKind k) {
    return k == ListKind::allow ? p.allow : p.deny;
}

json cidrs_to_json(const std::vector<net::Cidr>& v) {
    json a = json::array();
    for (const auto& c : v)
        a.push_back(c.to_string());
    return a;
}

std::vector<net::Cidr> cidrs_from_json(const json& j, const char* key, const std::string& file) {
    std::vector<net::Cidr> out;
    if (!j.contains(key))
        return out;
    if (!j[key].is_array())
        throw ConfigError(file, key, "expected an array");
    for (std::size_t i = 0; i < j[key].size(); ++i) {
        const auto& e = j[key][i];
        std::string err;
        auto c = e.is_string() ? net::Cidr::parse(e.get<std::string>(), &err) : std::nullopt;
        if (!c)
            throw ConfigError(file, std::string(key) + "[" + std::to_string(i) + "]",
                              err.empty() ? "expected a CIDR string" : err);
        out.push_back(*c);
    }
    return out;
}

}  // namespace

const char* to_string(AttachModeSetting m) {
    switch (m) {
    case AttachModeSetting::native: return "native";
    case AttachModeSetting::generic: return "generic";
    case AttachModeSetting::automatic: return "auto";
    }
    return "?";
}

std::optional<AttachModeSetting> parse_attach_mode(std::string_view text) {
    if (text == "native")
        return AttachModeSetting::native;
    if (text == "generic")
        return AttachModeSetting::generic;
    if (text == "auto")
        return AttachModeSetting::automatic;
    return std::nullopt;
}

bool add_entry(RuntimeOverlay& o, ListKind kind, const net::Cidr& prefix, const policy::Policy& base) {
    auto& removed = kind == ListKind::allow ? o.allow_removed : o.deny_removed;
    auto& add = kind == ListKind::allow ? o.allow_added : o.deny_added;
    if (erase_value(removed, prefix))
        return true;  // back to the config's entry
    if (contains(base_list(base, kind), prefix) || contains(add, prefix))
        return false;
    add.push_back(prefix);
    return true;
}

bool remove_entry(RuntimeOverlay& o, ListKind kind, const net::Cidr& prefix, const policy::Policy& base) {
    auto& add = kind == ListKind::allow ? o.allow_added : o.deny_added;
    auto& removed = kind == ListKind::allow ? o.allow_removed : o.deny_removed;
    if (erase_value(add, prefix))
        return true;
    if (contains(base_list(base, kind), prefix) && !contains(removed, prefix)) {
        removed.push_back(prefix);
        return true;
    }
    return false;
}

void set_tier(RuntimeOverlay& o, const net::Cidr& prefix, const std::string& tier) {
    std::erase_if(o.members, [&](const policy::TierMember& m) { return m.prefix == prefix; });
    o.members.push_back({prefix, tier});
}

void note_attached(RuntimeOverlay& o, const InterfaceConfig& iface, const std::vector<InterfaceConfig>& base) {
    erase_value(o.detached, iface.name);
    std::erase_if(o.attached, [&](const InterfaceConfig& i) { return i.name == iface.name; });
    const bool in_base = std::any_of(base.begin(), base.end(), [&](const InterfaceConfig& i) { return i == iface; });
    if (!in_base)
        o.attached.push_back(iface);
}

void note_detached(RuntimeOverlay& o, const std::string& ifname, const std::vector<InterfaceConfig>& base) {
    std::erase_if(o.attached, [&](const InterfaceConfig& i) { return i.name == ifname; });
    const bool in_base =
        std::any_of(base.begin(), base.end(), [&](const InterfaceConfig& i) { return i.name == ifname; });
    if (in_base && !contains(o.detached, ifname))
        o.detached.push_back(ifname);
}

policy::Policy effective_policy(const policy::Policy& base, const RuntimeOverlay& o,
                                std::vector<std::string>* warnings) {
    policy::Policy p = base;
    auto merge = [](std::vector<net::Cidr>& list, const std::vector<net::Cidr>& added,
                    const std::vector<net::Cidr>& removed) {
        std::erase_if(list, [&](const net::Cidr& c) { return contains(removed, c); });
        for (const auto& c : added)
            if (!contains(list, c))
                list.push_back(c);
    };
    merge(p.allow, o.allow_added, o.allow_removed);
    merge(p.deny, o.deny_added, o.deny_removed);
    for (const auto& m : o.members) {
        const bool known = std::any_of(p.tiers.begin(), p.tiers.end(),
                                       [&](const policy::Tier& t) { return t.name == m.tier; });
        if (!known) {
            if (warnings)
                warnings->push_back("runtime tier assignment " + m.prefix.to_string() + " -> " + m.tier +
                                    " skipped: the config has no tier '" + m.tier + "'");
            continue;
        }
        std::erase_if(p.members, [&](const policy::TierMember& x) { return x.prefix == m.prefix; });
        p.members.push_back(m);
    }
    return p;
}

std::vector<InterfaceConfig> effective_interfaces(const std::vector<InterfaceConfig>& base, const RuntimeOverlay& o) {
    std::vector<InterfaceConfig> out;
    for (const auto& i : base)
        if (!contains(o.detached, i.name) &&
            std::none_of(o.attached.begin(), o.attached.end(), [&](const InterfaceConfig& a) { return a.name == i.name; }))
            out.push_back(i);
    for (const auto& a : o.attached)
        out.push_back(a);
    return out;
}

json to_json(const RuntimeOverlay& o) {
    json members = json::array();
    for (const auto& m : o.members)
        members.push_back({{"cidr", m.prefix.to_string()}, {"tier", m.tier}});
    json attached = json::array();
    for (const auto& i : o.attached)
        attached.push_back({{"name", i.name}, {"mode", to_string(i.mode)}});
    json overrides = json::array();
    for (const auto& v : o.overrides) {
        json e{{"target", v.target == policy::Override::Target::tier ? "tier" : "rule"},
               {"name", v.name},
               {"start_ms", v.start_ms},
               {"until_ms", v.until_ms},
               {"reason", v.reason}};
        if (v.factor)
            e["factor"] = *v.factor;
        if (v.pps)
            e["pps"] = *v.pps;
        overrides.push_back(std::move(e));
    }
    return json{{"allow_added", cidrs_to_json(o.allow_added)}, {"allow_removed", cidrs_to_json(o.allow_removed)},
                {"deny_added", cidrs_to_json(o.deny_added)},   {"deny_removed", cidrs_to_json(o.deny_removed)},
                {"members", members},                          {"attached", attached},
                {"detached", o.detached},                      {"overrides", overrides},
                {"emergency", o.emergency}};
}

RuntimeOverlay overlay_from_json(const json& j, const std::string& file) {
    if (!j.is_object())
        throw ConfigError(file, "(top level)", "expected an object");
    RuntimeOverlay o;
    if (j.contains("emergency")) {
        if (!j["emergency"].is_boolean())
            throw ConfigError(file, "emergency", "expected true or false");
        o.emergency = j["emergency"].get<bool>();
    }
    if (j.contains("overrides")) {
        if (!j["overrides"].is_array())
            throw ConfigError(file, "overrides", "expected an array");
        for (std::size_t i = 0; i < j["overrides"].size(); ++i) {
            const auto& e = j["overrides"][i];
            const std::string field = "overrides[" + std::to_string(i) + "]";
            const auto ok = e.is_object() && e.contains("target") && (e["target"] == "tier" || e["target"] == "rule") &&
                            e.contains("name") && e["name"].is_string() && e.value("start_ms", json(0)).is_number_integer() &&
                            e.value("until_ms", json(0)).is_number_integer() &&
                            (e.contains("factor") ? e["factor"].is_number() && e["factor"].get<double>() > 0 &&
                                                        e["factor"].get<double>() <= 1000
                                                  : true) &&
                            (e.contains("pps") ? e["pps"].is_number_unsigned() && e["pps"].get<std::uint64_t>() >= 1 : true) &&
                            (e.contains("factor") != e.contains("pps"));
            if (!ok)
                throw ConfigError(file, field, "expected {\"target\", \"name\", \"factor\" or \"pps\", \"until_ms\"}");
            policy::Override v{.target = e["target"] == "rule" ? policy::Override::Target::rule : policy::Override::Target::tier,
                               .name = e["name"].get<std::string>(),
                               .start_ms = e.value("start_ms", std::int64_t{0}),
                               .until_ms = e.value("until_ms", std::int64_t{0}),
                               .reason = e.value("reason", std::string()),
                               .origin = "rlctl"};
            if (e.contains("factor"))
                v.factor = e["factor"].get<double>();
            else
                v.pps = e["pps"].get<std::uint64_t>();
            o.overrides.push_back(std::move(v));
        }
    }
    o.allow_added = cidrs_from_json(j, "allow_added", file);
    o.allow_removed = cidrs_from_json(j, "allow_removed", file);
    o.deny_added = cidrs_from_json(j, "deny_added", file);
    o.deny_removed = cidrs_from_json(j, "deny_removed", file);
    if (j.contains("members")) {
        for (std::size_t i = 0; i < j["members"].size(); ++i) {
            const auto& m = j["members"][i];
            const std::string field = "members[" + std::to_string(i) + "]";
            if (!m.is_object() || !m.contains("cidr") || !m["cidr"].is_string() || !m.contains("tier") ||
                !m["tier"].is_string())
                throw ConfigError(file, field, "expected {\"cidr\": ..., \"tier\": ...}");
            std::string err;
            auto c = net::Cidr::parse(m["cidr"].get<std::string>(), &err);
            if (!c)
                throw ConfigError(file, field + ".cidr", err);
            o.members.push_back({*c, m["tier"].get<std::string>()});
        }
    }
    if (j.contains("attached")) {
        for (std::size_t i = 0; i < j["attached"].size(); ++i) {
            const auto& a = j["attached"][i];
            const std::string field = "attached[" + std::to_string(i) + "]";
            if (!a.is_object() || !a.contains("name") || !a["name"].is_string() || !a.contains("mode") ||
                !a["mode"].is_string())
                throw ConfigError(file, field, "expected {\"name\": ..., \"mode\": ...}");
            auto mode = parse_attach_mode(a["mode"].get<std::string>());
            if (!mode)
                throw ConfigError(file, field + ".mode", "expected native, generic or auto");
            o.attached.push_back({a["name"].get<std::string>(), *mode});
        }
    }
    if (j.contains("detached")) {
        if (!j["detached"].is_array())
            throw ConfigError(file, "detached", "expected an array");
        for (const auto& d : j["detached"]) {
            if (!d.is_string())
                throw ConfigError(file, "detached", "expected interface names");
            o.detached.push_back(d.get<std::string>());
        }
    }
    return o;
}

}  // namespace rlgate::config
