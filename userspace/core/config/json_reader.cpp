// SPDX-License-Identifier: BSD-2-Clause
#include "core/config/json_reader.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <vector>

#include "core/config/config.hpp"  // parse_duration_ns, parse_quantity

namespace rlgate::config {

ConfigError::ConfigError(std::string file, std::string field, std::string reason)
    : std::runtime_error((file.empty() ? "" : file + ": ") + (field.empty() ? "" : field + ": ") + reason),
      file_(std::move(file)),
      field_(std::move(field)),
      reason_(std::move(reason)) {}

std::string join(const std::string& base, std::string_view key) {
    return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string at_index(const std::string& base, std::size_t i) {
    return base + "[" + std::to_string(i) + "]";
}

std::string in_quotes(std::string_view s) {
    return "'" + std::string(s) + "'";
}

namespace {

// Records the first key that appears twice in one object: nlohmann keeps only
// the last value, and a copy-pasted tier or field must not vanish silently.
class DuplicateKeyFinder {
public:
    bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, Json& parsed) {
        using E = nlohmann::json::parse_event_t;
        switch (event) {
        case E::object_start:
        case E::array_start: {
            std::string path = child_path();
            stack_.push_back(Frame{.array = event == E::array_start, .path = std::move(path)});
            break;
        }
        case E::object_end:
        case E::array_end:
            if (!stack_.empty())
                stack_.pop_back();
            break;
        case E::key:
            if (!stack_.empty() && parsed.is_string()) {
                auto& f = stack_.back();
                f.key = parsed.get<std::string>();
                if (!f.keys.insert(f.key).second && !duplicate_)
                    duplicate_ = join(f.path, f.key);
            }
            break;
        case E::value:
            if (!stack_.empty() && stack_.back().array)
                ++stack_.back().next_index;
            break;
        }
        return true;
    }

    [[nodiscard]] const std::optional<std::string>& duplicate() const { return duplicate_; }

private:
    struct Frame {
        bool array = false;
        std::string path;
        std::size_t next_index = 0;
        std::string key;
        std::set<std::string> keys;
    };

    // Path of the value that starts now inside the innermost container.
    std::string child_path() {
        if (stack_.empty())
            return "";
        auto& f = stack_.back();
        return f.array ? at_index(f.path, f.next_index++) : join(f.path, f.key);
    }

    std::vector<Frame> stack_;
    std::optional<std::string> duplicate_;
};

}  // namespace

Json JsonReader::parse_json(std::string_view text) const {
    DuplicateKeyFinder dups;
    Json root;
    try {
        root = Json::parse(text.begin(), text.end(),
                           [&dups](int depth, nlohmann::json::parse_event_t event, Json& parsed) {
                               return dups(depth, event, parsed);
                           },
                           /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const nlohmann::json::parse_error& e) {
        // e.byte is the 1-based offset of the offending character (size + 1
        // at the end of input); count lines and columns ourselves so a
        // newline inside a bad token does not report "column 0".
        const std::size_t off = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
        const auto before = text.substr(0, off);
        const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
        const auto nl = before.rfind('\n');
        const std::size_t column = nl == std::string_view::npos ? off + 1 : off - nl;
        std::string message = e.what();
        // "[json.exception.parse_error.101] parse error at line 2, column 8: syntax error ..."
        if (auto bracket = message.find("] "); bracket != std::string::npos)
            if (auto colon = message.find(": ", bracket); colon != std::string::npos)
                message.erase(0, colon + 2);
        fail("line " + std::to_string(line) + ", column " + std::to_string(column), message);
    } catch (const nlohmann::json::exception& e) {
        // e.g. out_of_range.406 "number overflow parsing '1e400'": no position.
        std::string message = e.what();
        if (auto bracket = message.find("] "); bracket != std::string::npos)
            message.erase(0, bracket + 2);
        fail("", message);
    }
    if (dups.duplicate())
        fail(*dups.duplicate(), "duplicate key (the later value would silently replace the earlier one)");
    return root;
}

void JsonReader::expect_object(const Json& v, const std::string& path,
                           std::initializer_list<std::string_view> known) const {
    expect_object(v, path, std::span<const std::string_view>(known.begin(), known.size()));
}

void JsonReader::expect_object(const Json& v, const std::string& path, std::span<const std::string_view> known) const {
    if (!v.is_object())
        fail(path, path.empty() ? "expected a JSON object at the top level" : "expected an object");
    for (const auto& [key, _] : v.items()) {
        if (std::find(known.begin(), known.end(), key) != known.end())
            continue;
        std::string list;
        for (auto k : known)
            list += (list.empty() ? "" : ", ") + std::string(k);
        fail(join(path, key), "unknown field (known here: " + list + ")");
    }
}

std::uint64_t JsonReader::get_uint(const Json& v, const std::string& path) const {
    if (v.is_number_unsigned())
        return v.get<std::uint64_t>();
    if (v.is_number_float()) {
        // 1e6 is an integer written as a float; 1.5 and -1 are not counts.
        const double d = v.get<double>();
        if (std::isfinite(d) && d >= 0 && std::floor(d) == d) {
            if (d >= 18446744073709551616.0)
                fail(path, "number too large");
            return static_cast<std::uint64_t>(d);
        }
    }
    fail(path, "expected a non-negative integer");
}

std::uint64_t JsonReader::get_uint_in(const Json& v, const std::string& path, std::uint64_t lo,
                                  std::uint64_t hi) const {
    const auto n = get_uint(v, path);
    if (n < lo || n > hi)
        fail(path, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
    return n;
}

std::uint64_t JsonReader::get_quantity(const Json& v, const std::string& path) const {
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (auto q = parse_quantity(s))
            return *q;
        fail(path, in_quotes(s) + " is not a quantity (an integer with an optional k, M, G or T suffix, e.g. \"64k\")");
    }
    if (v.is_number())
        return get_uint(v, path);
    fail(path, "expected a non-negative integer or a quantity string such as \"64k\"");
}

std::uint64_t JsonReader::get_duration(const Json& v, const std::string& path) const {
    if (!v.is_string())
        fail(path, "expected a duration string such as \"10s\"");
    const auto& s = v.get_ref<const std::string&>();
    const auto ns = parse_duration_ns(s);
    if (!ns)
        fail(path, in_quotes(s) + " is not a duration (an integer with unit ms, s, m, h or d, e.g. \"10s\")");
    if (*ns == 0)
        fail(path, "must be longer than zero");
    return *ns;
}

std::string JsonReader::get_string(const Json& v, const std::string& path) const {
    if (!v.is_string())
        fail(path, "expected a string");
    return v.get<std::string>();
}

bool JsonReader::get_bool(const Json& v, const std::string& path) const {
    if (!v.is_boolean())
        fail(path, "expected true or false");
    return v.get<bool>();
}

const Json& JsonReader::get_array(const Json& v, const std::string& path) const {
    if (!v.is_array())
        fail(path, "expected an array");
    return v;
}

std::string JsonReader::get_abs_path(const Json& v, const std::string& path) const {
    auto s = get_string(v, path);
    if (s.empty() || s.front() != '/')
        fail(path, "must be an absolute path");
    if (s.find('\0') != std::string::npos)
        fail(path, "must not contain a NUL character");
    return s;
}

double JsonReader::get_number(const Json& v, const std::string& path) const {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
        fail(path, "expected a non-negative number");
    return v.get<double>();
}


}  // namespace rlgate::config
