// SPDX-License-Identifier: BSD-2-Clause
#include "cli/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace rlgate::cli {

void Table::print(std::ostream& out) const {
    std::vector<std::size_t> width(headers_.size());
    for (std::size_t i = 0; i < headers_.size(); ++i)
        width[i] = headers_[i].size();
    for (const auto& r : rows_)
        for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s;
        for (std::size_t i = 0; i < width.size(); ++i) {
            const std::string cell = i < cells.size() ? cells[i] : "";
            s += cell;
            if (i + 1 < width.size())
                s += std::string(width[i] - cell.size() + 2, ' ');
        }
        while (!s.empty() && s.back() == ' ')
            s.pop_back();
        out << s << '\n';
    };
    line(headers_);
    for (const auto& r : rows_)
        line(r);
}

std::string human_count(double v) {
    char buf[32];
    const double a = std::fabs(v);
    if (a >= 1e9)
        std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
    else if (a >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
    else if (a >= 1e4)
        std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else if (a == std::floor(a))
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

std::string human_duration(double seconds) {
    auto s = static_cast<long long>(seconds);
    std::string out;
    if (s >= 86400) {
        out += std::to_string(s / 86400) + "d";
        s %= 86400;
    }
    if (s >= 3600 || !out.empty()) {
        out += std::to_string(s / 3600) + "h";
        s %= 3600;
    }
    if (s >= 60 || !out.empty()) {
        out += std::to_string(s / 60) + "m";
        s %= 60;
    }
    return out + std::to_string(s) + "s";
}

}  // namespace rlgate::cli
