// SPDX-License-Identifier: BSD-2-Clause
#include "core/metrics/exposition.hpp"

#include <cmath>
#include <cstdio>

namespace rlgate::metrics {

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (char c : help)  // HELP escapes backslash and newline only
        out_ += c == '\n' ? std::string("\\n") : c == '\\' ? std::string("\\\\") : std::string(1, c);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void Exposition::head(std::string_view name, const Labels& labels) {
    out_ += name;
    if (!labels.empty()) {
        out_ += '{';
        bool first = true;
        for (const auto& [k, v] : labels) {
            if (!first)
                out_ += ',';
            first = false;
            out_ += k;
            out_ += "=\"";
            out_ += escape_label_value(v);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
}

void Exposition::integer_sample(std::string_view name, const Labels& labels, std::uint64_t value) {
    head(name, labels);
    out_ += std::to_string(value);
    out_ += '\n';
}

void Exposition::sample(std::string_view name, const Labels& labels, double value) {
    head(name, labels);
    if (std::isnan(value)) {
        out_ += "NaN";
    } else if (std::isinf(value)) {
        out_ += value > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", value);
        out_ += buf;
    }
    out_ += '\n';
}

}  // namespace rlgate::metrics
