// SPDX-License-Identifier: BSD-2-Clause
// Plain aligned text tables for people (scripts use --json).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace rlgate::cli {

class Table {
public:
    explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    [[nodiscard]] bool empty() const { return rows_.empty(); }
    void print(std::ostream& out) const;

private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

// 1234567 -> "1.23M", 999 -> "999"
std::string human_count(double v);
// 3725 -> "1h2m5s"
std::string human_duration(double seconds);

}  // namespace rlgate::cli
