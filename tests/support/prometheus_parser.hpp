// SPDX-License-Identifier: BSD-2-Clause
// A strict parser of the Prometheus text exposition format (0.0.4), for
// tests: every line must be a HELP, a TYPE or a sample of a declared family;
// names, label names and escapes follow the format; no sample repeats.
// Throws std::runtime_error naming the offending line.
#pragma once

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

namespace rlgate::testing {

struct PromSample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

inline std::vector<PromSample> parse_prometheus(const std::string& text) {
    static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    static const std::regex label_re("[a-zA-Z_][a-zA-Z0-9_]*");
    std::map<std::string, std::string> types;
    std::set<std::string> helped, seen;
    std::vector<PromSample> out;
    std::istringstream in(text);
    std::string line;
    int no = 0;
    auto fail = [&](const std::string& why) { throw std::runtime_error("line " + std::to_string(no) + ": " + why + ": " + line); };
    if (!text.empty() && text.back() != '\n')
        throw std::runtime_error("the exposition must end with a newline");
    while (std::getline(in, line)) {
        ++no;
        if (line.empty())
            fail("empty line");
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const auto rest = line.substr(7);
            const auto sp = rest.find(' ');
            const auto name = rest.substr(0, sp);
            if (!std::regex_match(name, name_re))
                fail("bad metric name");
            if (line[2] == 'H') {
                if (!helped.insert(name).second)
                    fail("second HELP");
            } else {
                const auto type = rest.substr(sp + 1);
                if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
                    fail("bad type");
                if (types.contains(name))
                    fail("second TYPE");
                if (type == "counter" && !name.ends_with("_total"))
                    fail("counter without _total");
                types[name] = type;
            }
            continue;
        }
        if (line.starts_with('#'))
            continue;  // other comments are allowed
        PromSample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ')
            ++i;
        s.name = line.substr(0, i);
        if (!std::regex_match(s.name, name_re))
            fail("bad sample name");
        if (!types.contains(s.name))
            fail("sample before its TYPE");
        std::string key = s.name + "{";
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                const auto eq = line.find('=', i);
                if (eq == std::string::npos)
                    fail("label without value");
                const auto lname = line.substr(i, eq - i);
                if (!std::regex_match(lname, label_re) || s.labels.contains(lname))
                    fail("bad or repeated label name");
                if (eq + 1 >= line.size() || line[eq + 1] != '"')
                    fail("label value not quoted");
                std::string value;
                std::size_t j = eq + 2;
                for (; j < line.size() && line[j] != '"'; ++j) {
                    if (line[j] == '\\') {
                        if (++j >= line.size())
                            fail("dangling escape");
                        if (line[j] == 'n')
                            value += '\n';
                        else if (line[j] == '\\' || line[j] == '"')
                            value += line[j];
                        else
                            fail("bad escape");
                    } else {
                        value += line[j];
                    }
                }
                if (j >= line.size())
                    fail("unterminated label value");
                s.labels[lname] = value;
                i = j + 1;
                if (i < line.size() && line[i] == ',')
                    ++i;
            }
            if (i >= line.size())
                fail("unterminated label set");
            ++i;
        }
        for (const auto& [k, v] : s.labels)
            key += k + "=" + v + ",";
        if (!seen.insert(key).second)
            fail("repeated sample");
        if (i >= line.size() || line[i] != ' ')
            fail("no value");
        const auto value = line.substr(i + 1);
        if (value == "+Inf" || value == "-Inf" || value == "NaN") {
            s.value = value == "NaN" ? NAN : (value[0] == '+' ? INFINITY : -INFINITY);
        } else {
            std::size_t used = 0;
            try {
                s.value = std::stod(value, &used);
            } catch (...) {
                fail("bad value");
            }
            if (used != value.size())
                fail("junk after the value (timestamps are not emitted)");
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace rlgate::testing
