// SPDX-License-Identifier: BSD-2-Clause
// Prometheus text exposition (format 0.0.4): families with HELP and TYPE,
// escaped label values, integers printed exactly. Pure.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlgate::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
public:
    // Starts a family; its samples follow. `type`: counter | gauge.
    void family(std::string_view name, std::string_view type, std::string_view help);
    template <std::integral T>
    void sample(std::string_view name, const Labels& labels, T value) {
        integer_sample(name, labels, static_cast<std::uint64_t>(value));
    }
    void sample(std::string_view name, const Labels& labels, double value);
    [[nodiscard]] const std::string& text() const { return out_; }

private:
    void head(std::string_view name, const Labels& labels);
    void integer_sample(std::string_view name, const Labels& labels, std::uint64_t value);
    std::string out_;
};

// Label value escaping of the text format: backslash, double quote, newline.
std::string escape_label_value(std::string_view v);

}  // namespace rlgate::metrics
