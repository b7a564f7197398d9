// SPDX-License-Identifier: BSD-2-Clause
// Reading a JSON config with errors that name the file, the field (a dotted
// path such as "tiers.free.pps" or "rules[2].ports") and the reason: comments
// allowed, duplicate keys refused, syntax errors with line and column. Shared
// by every config parser (rlgated's, rlgate-l7's). Pure.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace rlgate::config {

using Json = nlohmann::ordered_json;

// Rejection of a config file: which file, which field, and why. Syntax
// errors carry the line and column in `field` ("line 12, column 5").
class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string file, std::string field, std::string reason);
    [[nodiscard]] const std::string& file() const { return file_; }
    [[nodiscard]] const std::string& field() const { return field_; }
    [[nodiscard]] const std::string& reason() const { return reason_; }

private:
    std::string file_, field_, reason_;
};

std::string join(const std::string& base, std::string_view key);
std::string at_index(const std::string& base, std::size_t i);
std::string in_quotes(std::string_view s);

class JsonReader {
public:
    explicit JsonReader(const std::string& file) : file_(file) {}

    [[noreturn]] void fail(const std::string& field, const std::string& reason) const {
        throw ConfigError(file_, field, reason);
    }

    Json parse_json(std::string_view text) const;

    // Object with only the listed keys.
    void expect_object(const Json& v, const std::string& path, std::initializer_list<std::string_view> known) const;
    void expect_object(const Json& v, const std::string& path, std::span<const std::string_view> known) const;

    std::uint64_t get_uint(const Json& v, const std::string& path) const;
    std::uint64_t get_uint_in(const Json& v, const std::string& path, std::uint64_t lo, std::uint64_t hi) const;
    std::uint64_t get_quantity(const Json& v, const std::string& path) const;
    std::uint64_t get_duration(const Json& v, const std::string& path) const;
    std::string get_string(const Json& v, const std::string& path) const;
    bool get_bool(const Json& v, const std::string& path) const;
    double get_number(const Json& v, const std::string& path) const;
    const Json& get_array(const Json& v, const std::string& path) const;
    std::string get_abs_path(const Json& v, const std::string& path) const;

    [[nodiscard]] const std::string& file() const { return file_; }

private:
    const std::string& file_;
};

}  // namespace rlgate::config
