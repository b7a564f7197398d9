// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include "core/control/protocol.hpp"

namespace rlgate::control {
namespace {

TEST(ControlProtocol, ParsesAVersionedRequest) {
    const auto r = parse_request(R"({"v":1,"id":"a7","cmd":"allow.add","args":{"cidr":"10.0.0.0/8"}})");
    EXPECT_EQ(r.command, "allow.add");
    EXPECT_EQ(r.id, "a7");
    EXPECT_EQ(arg_string(r.args, "cidr"), "10.0.0.0/8");
    EXPECT_TRUE(parse_request(R"({"v":1,"cmd":"status"})").args.empty());
}

TEST(ControlProtocol, RejectsBadRequestsWithTheirCode) {
    auto code_of = [](const char* line) {
        try {
            parse_request(line);
        } catch (const ProtocolError& e) {
            return e.code();
        }
        return std::string("accepted");
    };
    EXPECT_EQ(code_of("{nope"), code::bad_json);
    EXPECT_EQ(code_of("42"), code::bad_request);
    EXPECT_EQ(code_of(R"({"cmd":"status"})"), code::bad_request);
    EXPECT_EQ(code_of(R"({"v":"1","cmd":"status"})"), code::bad_request);
    EXPECT_EQ(code_of(R"({"v":2,"cmd":"status"})"), code::unsupported_version);
    EXPECT_EQ(code_of(R"({"v":1,"cmd":""})"), code::bad_request);
    EXPECT_EQ(code_of(R"({"v":1,"cmd":"status","args":[1]})"), code::bad_request);
}

TEST(ControlProtocol, ArgumentAccessorsNameTheField) {
    const json args = {{"n", -1}, {"name", 5}, {"flag", "yes"}};
    try {
        arg_uint(args, "n", 1);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.code(), code::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("\"n\""), std::string::npos);
    }
    EXPECT_THROW(arg_string(args, "name"), ProtocolError);
    EXPECT_THROW(arg_string(args, "missing"), ProtocolError);
    EXPECT_THROW(arg_bool(args, "flag", false), ProtocolError);
    EXPECT_EQ(arg_uint(args, "absent", 7), 7U);
}

TEST(ControlProtocol, RepliesEchoTheId) {
    const auto ok = make_result(3, {{"x", 1}});
    EXPECT_EQ(ok["v"], kProtocolVersion);
    EXPECT_EQ(ok["id"], 3);
    EXPECT_EQ(ok["ok"], true);
    const auto err = make_error("q", code::not_found, "gone", {{"field", "f"}});
    EXPECT_EQ(err["ok"], false);
    EXPECT_EQ(err["error"]["code"], "not_found");
    EXPECT_EQ(err["error"]["details"]["field"], "f");
}

TEST(LineSplitter, SplitsAcrossFeedsAndSkipsBlankLines) {
    LineSplitter s(64);
    std::string line;
    s.feed("{\"a\":");
    EXPECT_EQ(s.next(line), LineSplitter::Status::need_more);
    s.feed("1}\r\n\n  \n{\"b\":2}\n");
    ASSERT_EQ(s.next(line), LineSplitter::Status::line);
    EXPECT_EQ(line, "{\"a\":1}");
    ASSERT_EQ(s.next(line), LineSplitter::Status::line);
    EXPECT_EQ(line, "{\"b\":2}");
    EXPECT_EQ(s.next(line), LineSplitter::Status::need_more);
}

TEST(LineSplitter, AnOversizedLineIsReportedOnceAndSkipped) {
    LineSplitter s(8);
    std::string line;
    s.feed(std::string(20, 'x'));
    EXPECT_EQ(s.next(line), LineSplitter::Status::oversized);
    s.feed(std::string(1000, 'y'));
    EXPECT_EQ(s.next(line), LineSplitter::Status::need_more) << "still inside the long line: no second report";
    s.feed("yy\nok\n");
    ASSERT_EQ(s.next(line), LineSplitter::Status::line);
    EXPECT_EQ(line, "ok");
    s.feed(std::string(12, 'z') + "\nfine\n");  // a long line that arrives whole
    EXPECT_EQ(s.next(line), LineSplitter::Status::oversized);
    ASSERT_EQ(s.next(line), LineSplitter::Status::line);
    EXPECT_EQ(line, "fine");
}

}  // namespace
}  // namespace rlgate::control
