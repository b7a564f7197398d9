// SPDX-License-Identifier: BSD-2-Clause
// The admin dashboard, embedded at build time from dashboard.html (no CDN).
#pragma once

namespace rlgate::daemon {
extern const char* const kDashboardHtml;
}
