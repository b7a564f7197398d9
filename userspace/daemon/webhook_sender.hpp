// SPDX-License-Identifier: BSD-2-Clause
// Delivers alert notifications to one webhook: HTTP POST of a JSON payload,
// one at a time, in order, retried with backoff while the receiver is down
// (core/alerts/delivery_queue.hpp decides what waits and when to retry).
#pragma once

#include <boost/asio.hpp>
#include <memory>
#include <string>

#include "core/alerts/delivery_queue.hpp"
#include "core/config/config.hpp"

namespace rlgate::daemon {

class WebhookSender : public std::enable_shared_from_this<WebhookSender> {
public:
    WebhookSender(boost::asio::io_context& io, config::Webhook hook, std::size_t queue, std::uint64_t max_backoff_ns);
    void push(std::string payload);
    void stop();
    [[nodiscard]] const config::Webhook& hook() const { return hook_; }
    [[nodiscard]] const alerts::DeliveryQueue& queue() const { return queue_; }

private:
    void pump();
    void attempt();
    void done(bool ok, const std::string& why);

    boost::asio::io_context& io_;
    config::Webhook hook_;
    alerts::DeliveryQueue queue_;
    boost::asio::steady_timer retry_;
    bool in_flight_ = false;
    bool stopped_ = false;
};

}  // namespace rlgate::daemon
