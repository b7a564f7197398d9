// SPDX-License-Identifier: BSD-2-Clause
// Human renderings of the daemon's replies (the --json form is the reply itself).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

namespace rlgate::cli {

void render_status(const nlohmann::json& r, std::ostream& out);
void render_stats(const nlohmann::json& r, std::ostream& out);
void render_top(const nlohmann::json& r, std::ostream& out);
void render_source(const nlohmann::json& r, std::ostream& out);
void render_policy(const nlohmann::json& r, std::ostream& out);
void render_entries(const nlohmann::json& r, std::ostream& out);  // allow/deny list
void render_tiers(const nlohmann::json& r, std::ostream& out);
void render_bans(const nlohmann::json& r, std::ostream& out);
void render_violations(const nlohmann::json& r, std::ostream& out);
void render_event(const nlohmann::json& e, std::ostream& out);
void render_alerts(const nlohmann::json& r, std::ostream& out);
void render_fleet(const nlohmann::json& r, std::ostream& out);
void render_limits(const nlohmann::json& r, std::ostream& out);  // override list, status
void render_insights(const nlohmann::json& r, std::ostream& out);

}  // namespace rlgate::cli
