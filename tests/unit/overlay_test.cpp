// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include "core/config/overlay.hpp"

namespace rlgate::config {
namespace {

net::Cidr cidr(const char* text) { return *net::Cidr::parse(text); }

policy::Policy base() {
    policy::Policy p;
    p.tiers.push_back({.name = "default"});
    p.tiers.push_back({.name = "premium"});
    p.allow = {cidr("10.0.0.0/8")};
    p.deny = {cidr("192.0.2.0/24")};
    p.members = {{cidr("198.51.100.0/24"), "premium"}};
    return p;
}

TEST(Overlay, AddAndRemoveOnTopOfTheConfig) {
    RuntimeOverlay o;
    const auto b = base();
    EXPECT_TRUE(add_entry(o, ListKind::allow, cidr("172.16.0.0/12"), b));
    EXPECT_FALSE(add_entry(o, ListKind::allow, cidr("172.16.0.0/12"), b)) << "already there";
    EXPECT_FALSE(add_entry(o, ListKind::allow, cidr("10.0.0.0/8"), b)) << "in the config already";
    EXPECT_TRUE(remove_entry(o, ListKind::deny, cidr("192.0.2.0/24"), b)) << "a config entry can be removed";
    EXPECT_FALSE(remove_entry(o, ListKind::deny, cidr("192.0.2.0/24"), b));
    EXPECT_FALSE(remove_entry(o, ListKind::deny, cidr("203.0.113.0/24"), b)) << "never there";
    const auto p = effective_policy(b, o);
    EXPECT_EQ(p.allow, (std::vector{cidr("10.0.0.0/8"), cidr("172.16.0.0/12")}));
    EXPECT_TRUE(p.deny.empty());
    EXPECT_TRUE(add_entry(o, ListKind::deny, cidr("192.0.2.0/24"), b)) << "re-adding undoes the removal";
    EXPECT_TRUE(o.deny_removed.empty());
    EXPECT_TRUE(o.deny_added.empty());
    EXPECT_TRUE(remove_entry(o, ListKind::allow, cidr("172.16.0.0/12"), b));
    EXPECT_TRUE(o.allow_added.empty());
}

TEST(Overlay, TierAssignmentsOverrideAndStaleOnesAreSkipped) {
    RuntimeOverlay o;
    set_tier(o, cidr("198.51.100.0/24"), "default");
    set_tier(o, cidr("203.0.113.0/24"), "gold");
    std::vector<std::string> warnings;
    const auto p = effective_policy(base(), o, &warnings);
    ASSERT_EQ(p.members.size(), 1U);
    EXPECT_EQ(p.members[0].tier, "default");
    ASSERT_EQ(warnings.size(), 1U);
    EXPECT_NE(warnings[0].find("gold"), std::string::npos);
    set_tier(o, cidr("198.51.100.0/24"), "premium");
    EXPECT_EQ(o.members.size(), 2U) << "one assignment per prefix";
}

TEST(Overlay, InterfacesAttachedAndDetachedAtRuntime) {
    const std::vector<InterfaceConfig> cfg = {{"eth0", AttachModeSetting::native}, {"eth1", AttachModeSetting::native}};
    RuntimeOverlay o;
    note_attached(o, {"eth2", AttachModeSetting::generic}, cfg);
    note_detached(o, "eth1", cfg);
    auto eff = effective_interfaces(cfg, o);
    ASSERT_EQ(eff.size(), 2U);
    EXPECT_EQ(eff[0].name, "eth0");
    EXPECT_EQ(eff[1].name, "eth2");
    EXPECT_EQ(eff[1].mode, AttachModeSetting::generic);
    note_attached(o, {"eth1", AttachModeSetting::native}, cfg);  // back as configured
    EXPECT_TRUE(o.detached.empty());
    EXPECT_EQ(o.attached.size(), 1U);
    note_attached(o, {"eth0", AttachModeSetting::generic}, cfg);  // re-attached in another mode
    eff = effective_interfaces(cfg, o);
    ASSERT_EQ(eff.size(), 3U);
    EXPECT_EQ(eff[2].name, "eth0");
    EXPECT_EQ(eff[2].mode, AttachModeSetting::generic);
}

TEST(Overlay, RoundTripsThroughJsonAndRejectsDamage) {
    RuntimeOverlay o;
    const auto b = base();
    add_entry(o, ListKind::deny, cidr("2001:db8::/48"), b);
    remove_entry(o, ListKind::allow, cidr("10.0.0.0/8"), b);
    set_tier(o, cidr("203.0.113.0/24"), "premium");
    note_attached(o, {"eth9", AttachModeSetting::automatic}, {});
    EXPECT_EQ(overlay_from_json(to_json(o), "runtime.json"), o);
    auto damaged = to_json(o);
    damaged["deny_added"][0] = "2001:db8::1/48";
    try {
        overlay_from_json(damaged, "runtime.json");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.field(), "deny_added[0]");
    }
    EXPECT_THROW(overlay_from_json(nlohmann::json::array(), "runtime.json"), ConfigError);
}

}  // namespace
}  // namespace rlgate::config
