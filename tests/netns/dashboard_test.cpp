// SPDX-License-Identifier: BSD-2-Clause
// The dashboard in a real browser: headless Chromium driven over W3C
// WebDriver by chromedriver, both started inside the daemon's namespace, so
// the page is loaded from the daemon's loopback listener as a person would.
// A flood shows up in the chart and the totals, a ban shows up in the table
// and its Unban button removes it in the daemon, and nothing the page loads
// comes from anywhere but the daemon: the browser is given a dead proxy
// (127.0.0.1:9) for every non-loopback request, which the test proves.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "netns/daemon_fixture.hpp"
#include "support/http_client.hpp"

extern char** environ;

namespace rlgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t kDriverPort = 9515;   // chromedriver, on the namespace's loopback
const std::string kOrigin = "http://127.0.0.1:9477";
const std::string kBanned = "203.0.113.0/24";

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

bool browser_installed() {
    return !trimmed(shell("command -v chromium")).empty() && !trimmed(shell("command -v chromedriver")).empty();
}

std::string tail(const std::string& s, std::size_t n) { return s.size() > n ? "..." + s.substr(s.size() - n) : s; }

std::string base64_decode(const std::string& in) {
    static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        const auto pos = chars.find(c);
        if (pos == std::string::npos)
            continue;  // '=' padding, line breaks
        acc = (acc << 6) | static_cast<std::uint32_t>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

// HTTP/1.1, one request per connection, made from inside `netns`.
HttpResult http_in(const std::string& netns, const std::string& method, const std::string& path, const std::string& body) {
    InNetns in(netns);
    auto fd = tcp_connect("127.0.0.1", kDriverPort);
    timeval tv{30, 0};  // a navigation or a new session may take a while
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(kDriverPort) +
                      "\r\nConnection: close\r\n";
    if (method != "GET" && method != "DELETE")
        req += "Content-Type: application/json; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    send_all(fd.get(), req);
    // chromedriver writes "Content-Length:N" (no space): parse leniently.
    std::string raw;
    char buf[65536];
    std::size_t need = std::string::npos;
    for (;;) {
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0)
            break;
        raw.append(buf, static_cast<std::size_t>(n));
        const auto end = raw.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
            std::string head = raw.substr(0, end);
            for (auto& c : head)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (const auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos)
                need = end + 4 + std::stoul(head.substr(cl + 17));
        }
        if (need != std::string::npos && raw.size() >= need)
            break;
    }
    HttpResult r;
    const auto end = raw.find("\r\n\r\n");
    if (raw.size() < 12 || end == std::string::npos)
        throw std::runtime_error("chromedriver: no HTTP answer to " + method + " " + path);
    r.status = std::stoi(raw.substr(9, 3));
    r.body = raw.substr(end + 4);
    return r;
}

// chromedriver (and through it Chromium) in a namespace, in a process group of
// its own: killed and reaped when the object dies, also when the test fails.
class Browser {
public:
    Browser(std::string netns, const std::string& chromium, const std::string& chromedriver)
        : netns_(std::move(netns)), chromium_(chromium) {
        char tmpl[] = "/tmp/rlgate-browser-XXXXXX";
        if (!::mkdtemp(tmpl))
            throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        std::filesystem::create_directories(dir_ / "home");
        // Everything the child needs is prepared before fork: after it, only exec.
        const std::string ns_path = "/run/netns/" + netns_;
        const std::string log_path = (dir_ / "chromedriver.log").string();
        std::vector<std::string> args = {chromedriver, "--port=" + std::to_string(kDriverPort), "--log-level=INFO",
                                         "--log-path=" + log_path};
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) {
            const std::string_view kv(*e);
            if (!kv.starts_with("HOME=") && !kv.starts_with("XDG_CONFIG_HOME=") && !kv.starts_with("XDG_CACHE_HOME="))
                env.emplace_back(kv);
        }
        for (const char* k : {"HOME=", "XDG_CONFIG_HOME=", "XDG_CACHE_HOME="})  // the profile leaves nothing in ~root
            env.push_back(std::string(k) + (dir_ / "home").string());
        std::vector<char*> argv, envp;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        for (auto& e : env)
            envp.push_back(e.data());
        envp.push_back(nullptr);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::setpgid(0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no chromedriver behind
            if (::getppid() != parent)
                ::_exit(127);
            const int ns = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
            if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0)
                ::_exit(126);
            const int out = ::open((log_path + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (out >= 0) {
                ::dup2(out, 1);
                ::dup2(out, 2);
            }
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        ::setpgid(pid_, pid_);  // also here: no race with the child's own call
        wait_ready();
    }

    ~Browser() {
        if (!session_.empty()) {
            try {
                http_in(netns_, "DELETE", "/session/" + session_, "");  // Chromium quits cleanly
            } catch (...) {
            }
        }
        if (pid_ > 0) {
            ::kill(-pid_, SIGTERM);
            const auto deadline = std::chrono::steady_clock::now() + 3s;
            siginfo_t info{};
            // WNOWAIT: chromedriver stays a zombie, so its group id cannot be reused before the sweep below.
            while (std::chrono::steady_clock::now() < deadline) {
                info.si_pid = 0;
                if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_)
                    break;
                std::this_thread::sleep_for(20ms);
            }
            ::kill(-pid_, SIGKILL);  // whatever is left of the group: chromedriver, Chromium and its helpers
            ::waitpid(pid_, nullptr, 0);
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    Browser(const Browser&) = delete;
    Browser& operator=(const Browser&) = delete;

    void new_session() {
        const nlohmann::json chromium_args = {
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--disable-dev-shm-usage", "--window-size=1280,1500",
            "--user-data-dir=" + (dir_ / "profile").string(),
            // Every request that is not to loopback goes to a proxy where nothing listens, and so
            // fails (loopback itself is bypassed implicitly: no bypass list). Names other than
            // localhost do not resolve either, and IP literals are "names" to these rules, so
            // 127.0.0.1 is excluded from them explicitly.
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"};
        const nlohmann::json caps = {
            {"capabilities",
             {{"alwaysMatch",
               {{"browserName", "chrome"},
                {"pageLoadStrategy", "normal"},
                {"timeouts", {{"script", 5000}, {"pageLoad", 15000}, {"implicit", 0}}},
                {"goog:chromeOptions", {{"binary", chromium_}, {"args", chromium_args}}}}}}}};
        const auto r = http_in(netns_, "POST", "/session", caps.dump());
        const auto j = nlohmann::json::parse(r.body, nullptr, false);
        if (r.status != 200 || !j.contains("value") || !j["value"].contains("sessionId"))
            throw std::runtime_error("new session: HTTP " + std::to_string(r.status) + " " + tail(r.body, 2000));
        session_ = j["value"]["sessionId"].get<std::string>();
    }

    // A session command; a WebDriver error comes back as {"error", "message"} with `ok` false.
    nlohmann::json command(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr,
                           bool* ok = nullptr) {
        const auto r = http_in(netns_, method, "/session/" + session_ + path, body.is_null() ? "" : body.dump());
        auto j = nlohmann::json::parse(r.body, nullptr, false);
        const bool good = r.status == 200 && j.is_object();
        if (ok)
            *ok = good;
        else if (!good)
            throw std::runtime_error(method + " " + path + ": HTTP " + std::to_string(r.status) + " " + tail(r.body, 1000));
        return j.is_object() ? j["value"] : nlohmann::json(r.body);
    }
    nlohmann::json execute(const std::string& script) {
        return command("POST", "/execute/sync", {{"script", script}, {"args", nlohmann::json::array()}});
    }
    // The element's WebDriver id, or "" when there is none.
    std::string find(const std::string& css) {
        bool found = false;
        const auto el = command("POST", "/element", {{"using", "css selector"}, {"value", css}}, &found);
        return found && el.is_object() && !el.empty() && el.begin()->is_string() ? el.begin()->get<std::string>() : "";
    }
    // Clicks or types into `css`; retried, as a table may be re-rendered between finding and acting.
    bool act(const std::string& css, const std::string& what, const nlohmann::json& body) {
        for (int attempt = 0; attempt < 5; ++attempt) {
            bool ok = false;
            if (const auto id = find(css); !id.empty())
                command("POST", "/element/" + id + "/" + what, body, &ok);
            if (ok)
                return true;
            std::this_thread::sleep_for(200ms);
        }
        return false;
    }
    bool click(const std::string& css) { return act(css, "click", nlohmann::json::object()); }
    bool type(const std::string& css, const std::string& text) { return act(css, "value", {{"text", text}}); }

    [[nodiscard]] std::string log() const {
        std::ifstream in(dir_ / "chromedriver.log");
        return {std::istreambuf_iterator<char>(in), {}};
    }

private:
    void wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("chromedriver exited at start (status " + std::to_string(status) + ")");
            }
            try {
                const auto r = http_in(netns_, "GET", "/status", "");
                if (r.status == 200 && nlohmann::json::parse(r.body, nullptr, false)["value"].value("ready", false))
                    return;
            } catch (const std::exception&) {
            }
            std::this_thread::sleep_for(50ms);
        }
        throw std::runtime_error("chromedriver did not answer on port " + std::to_string(kDriverPort));
    }

    std::string netns_, chromium_;
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    std::string session_;
};

class DashboardTest : public DaemonTest {
protected:
    // Evaluates `script` (a function body that returns a value) until it is truthy.
    nlohmann::json wait_for(Browser& b, const std::string& what, const std::string& script,
                            std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        nlohmann::json v;
        while (std::chrono::steady_clock::now() < deadline) {
            v = b.execute(script);
            if (!v.is_null() && v != false)
                return v;
            std::this_thread::sleep_for(200ms);
        }
        ADD_FAILURE() << "timed out waiting for " << what << "; status line: "
                      << b.execute("return document.getElementById('status-line').textContent").dump();
        return v;
    }
    // Runs `scenario` with a browser in the daemon's namespace: in a function of its own, so that a
    // fatal assertion in it still lets this print chromedriver's log; the browser is gone on return.
    void with_browser(const std::function<void(Browser&)>& scenario) {
        const auto chromium = trimmed(shell("command -v chromium"));
        const auto chromedriver = trimmed(shell("command -v chromedriver"));
        ASSERT_FALSE(chromium.empty() || chromedriver.empty());
        std::optional<Browser> browser;
        try {
            browser.emplace(pair_->ns_b(), chromium, chromedriver);
            browser->new_session();
            scenario(*browser);
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
        }
        if (HasFailure() && browser)
            std::cerr << "--- chromedriver log (tail) ---\n" << tail(browser->log(), 6000) << std::endl;
    }
    void flood_and_unban(Browser& browser);
    bool banned(const std::string& source) {
        const auto list = daemon_->call("ban.list");  // a local: a range-for over a temporary's member dangles
        for (const auto& x : list["bans"])
            if (x["source"] == source)
                return true;
        return false;
    }
};

constexpr const char* kFloodTestToken = "dashboard-flood-token-0123456789";

TEST_F(DashboardTest, ChartsAFloodAndUnbansWithAClickWithoutLeavingLoopback) {
    RLGATE_REQUIRE(browser_installed(), "Debian's chromium and chromium-driver needed (scripts/setup-deps.sh installs them)");

    auto cfg = base_config(
        {{"default", {{"pps", 100}, {"burst", 50}, {"autoban", {{"drops", 2000}, {"window", "10s"}, {"ban", "10m"}}}}},
         {"partners", tier(5000, 500)}});
    // Writes (the Unban button) need the token: any local user can reach a loopback port.
    cfg["admin"] = {{"listen", "127.0.0.1:9477"}, {"token", kFloodTestToken}};
    cfg["alerts"] = {{"rules", {{{"name", "flood"}, {"type", "drop_ratio"}, {"above", 0.5}, {"for", "1s"}, {"window", "10s"}}}}};
    daemon_->write_config(cfg);
    daemon_->start();

    with_browser([this](Browser& b) { flood_and_unban(b); });
}

void DashboardTest::flood_and_unban(Browser& browser) {
    // Off loopback nothing is reached: the request goes to the dead proxy and fails there
    // (not with a name error: the proxy, not the resolver, is what stops it).
    bool ok = true;
    const auto probe = browser.command("POST", "/url", {{"url", "http://rlgate-probe.invalid/"}}, &ok);
    EXPECT_FALSE(ok) << "a non-loopback page loaded: " << probe.dump();
    EXPECT_NE(probe.dump().find("ERR_PROXY_CONNECTION_FAILED"), std::string::npos) << probe.dump();

    browser.command("POST", "/url", {{"url", kOrigin + "/"}});
    browser.execute(std::string("sessionStorage.setItem('rlgate.token', '") + kFloodTestToken + "'); location.reload(); return 1");
    EXPECT_EQ(browser.execute("return document.title"), "rlgate");
    wait_for(browser, "the first stats poll",
             "return +document.getElementById('chart-pps').dataset.polls >= 1 && "
             "document.getElementById('status-line').dataset.state === 'ok'",
             10s);

    const auto f = flood("10.220.0.1", 5, 20000, 2.0);
    EXPECT_GT(f["sent"].get<std::uint64_t>(), 10000U) << f.dump();
    const auto seen = wait_for(browser, "the chart and the totals to show drops", R"(
        const c = document.getElementById('chart-pps');
        const d = +document.getElementById('total-dropped').dataset.value;
        return +c.dataset.points > 0 && +c.dataset.dropPeak > 0 && d > 0
            ? {points: +c.dataset.points, dropPeak: +c.dataset.dropPeak, dropped: d} : null;)",
                               12s);
    ASSERT_TRUE(seen.is_object()) << seen.dump();
    EXPECT_GT(seen["dropPeak"].get<double>(), 1000.0) << "the flood's drop rate is in the chart: " << seen.dump();
    const auto stats = daemon_->call("stats");
    EXPECT_LE(seen["dropped"].get<std::uint64_t>(), stats["dropped"]["packets"].get<std::uint64_t>());

    int code = 0;
    const auto out = rlctl("ban add " + kBanned + " --ttl 10m", &code);
    ASSERT_EQ(code, 0) << out;
    const std::string button = "button.unban[data-cidr=\"" + kBanned + "\"]";
    wait_for(browser, "the ban in the table", "return document.querySelector('#bans " + button + "') !== null", 10s);
    // The tables fill in within a poll or two; then a picture for people (and this test) to look at.
    wait_for(browser, "the tier and alert tables",
             "return document.querySelector('#tiers tr[data-tier=\"default\"]') !== null && "
             "document.querySelector('#alerts tr[data-alert=\"flood\"]') !== null",
             8s);

    const auto png = base64_decode(browser.command("GET", "/screenshot").get<std::string>());
    std::ofstream(RLGATE_DASHBOARD_SCREENSHOT, std::ios::binary) << png;
    ASSERT_GT(png.size(), 10'000U) << "a dashboard with data is not a blank page";
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    EXPECT_EQ(png.substr(12, 4), "IHDR");
    const auto be32 = [&](std::size_t at) {
        return (static_cast<std::uint32_t>(static_cast<unsigned char>(png[at])) << 24) |
               (static_cast<std::uint32_t>(static_cast<unsigned char>(png[at + 1])) << 16) |
               (static_cast<std::uint32_t>(static_cast<unsigned char>(png[at + 2])) << 8) |
               static_cast<std::uint32_t>(static_cast<unsigned char>(png[at + 3]));
    };
    EXPECT_GE(be32(16), 800U) << "width";
    EXPECT_GE(be32(20), 600U) << "height";
    std::cerr << "dashboard screenshot: " << RLGATE_DASHBOARD_SCREENSHOT << " (" << png.size() << " bytes)\n";

    ASSERT_TRUE(browser.click("#bans " + button)) << "no Unban button to click for " << kBanned;
    for (int i = 0; i < 50 && banned(kBanned); ++i)
        std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(banned(kBanned)) << daemon_->call("ban.list").dump();
    wait_for(browser, "the row to leave the table", "return document.querySelector('#bans " + button + "') === null", 8s);
    EXPECT_NE(browser.execute("return document.getElementById('status-line').dataset.state"), "error")
        << browser.execute("return document.getElementById('status-line').textContent");

    // Everything the page fetched came from the daemon; nothing was refused by its CSP.
    const auto urls = browser.execute(
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".map(e => e.name)");
    ASSERT_TRUE(urls.is_array());
    EXPECT_GT(urls.size(), 5U) << "the page polled the API: " << urls.dump();
    for (const auto& u : urls)
        EXPECT_TRUE(u.get<std::string>().starts_with(kOrigin + "/")) << "not from the daemon: " << u;
    EXPECT_EQ(browser.execute("return window.rlgateCspViolations"), nlohmann::json::array());
}

// With admin.token set, every call is refused until the form is filled in; the
// token is then sent as a bearer token and kept for the tab.
TEST_F(DashboardTest, AsksForTheTokenThenSendsItAsABearerToken) {
    RLGATE_REQUIRE(browser_installed(), "Debian's chromium and chromium-driver needed (scripts/setup-deps.sh installs them)");
    const std::string token = "dashboard-test-token-0123456789";
    auto cfg = base_config({{"default", tier(1000, 100)}});
    cfg["admin"] = {{"listen", "127.0.0.1:9477"}, {"token", token}};
    daemon_->write_config(cfg);
    daemon_->start();
    {
        // The page itself holds no data and must load without the token (a browser cannot send one
        // when it navigates).
        InNetns in(pair_->ns_b());
        ASSERT_EQ(http_request(9477, "GET", "/").status, 200);
    }
    with_browser([&](Browser& b) {
        b.command("POST", "/url", {{"url", kOrigin + "/"}});
        wait_for(b, "the token form",
                 "return !document.getElementById('token-form').hidden && "
                 "document.getElementById('status-line').dataset.state === 'auth'",
                 10s);
        EXPECT_EQ(b.execute("return document.getElementById('hdr-version').textContent"), "–") << "nothing without the token";
        ASSERT_TRUE(b.type("#token-input", token));
        ASSERT_TRUE(b.click("#token-form button[type=submit]"));
        wait_for(b, "the page to load with the token",
                 "return document.getElementById('token-form').hidden && "
                 "document.getElementById('status-line').dataset.state === 'ok' && "
                 "document.getElementById('hdr-version').textContent !== '–' && "
                 "+document.getElementById('chart-pps').dataset.polls >= 1",
                 10s);
        EXPECT_EQ(b.execute("return sessionStorage.getItem('rlgate.token')"), token);
        // A reload keeps the token (same tab): no form this time.
        b.command("POST", "/refresh", nlohmann::json::object());
        wait_for(b, "the reloaded page",
                 "return document.getElementById('status-line').dataset.state === 'ok' && "
                 "document.getElementById('token-form').hidden",
                 10s);
    });
}

}  // namespace
}  // namespace rlgate::testing
