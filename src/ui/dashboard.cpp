#include "ui/dashboard.h"

#include <fmt/format.h>
#include <httplib.h>

#include <memory>
#include <map>
#include <thread>

#include "http/reply.h"
#include "edge/api_token.h"
#include "ui/assets.h"
#include "ui/event_feed.h"

namespace sm::ui {
using http::reply;
using nlohmann::json;

namespace {

json commit_json(const git::CommitInfo& c) {
  return {{"hash", c.hash}, {"subject", c.subject}, {"author", c.author}, {"time", c.time}};
}

/// Headers for what the page is made of: nothing from elsewhere, never framed, not cached.
void page_headers(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
                 "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

/// `text` with HTML's special characters escaped.
std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string Dashboard::render_index(std::string_view page, const std::optional<app::Status>& status) {
  std::map<std::string, std::string> v;  // placeholder -> HTML
  auto card = [&](const std::string& side, const std::string& hash, const std::string& slot) {
    std::string subject = "—", author = "—";
    if (!hash.empty()) try {
        const git::CommitInfo c = repo_.describe(hash);
        subject = c.subject;
        author = c.author;
      } catch (const git::GitError&) {
        subject = "(not in the repository)";
      }
    v[side + "_commit"] = hash.empty() ? "—" : escaped(hash.substr(0, 12));
    v[side + "_subject"] = escaped(subject);
    v[side + "_author"] = escaped(author);
    v[side + "_slot"] = slot.empty() ? "—" : escaped(slot);
  };
  const app::Status s = status.value_or(app::Status{});
  card("live", status ? s.live_commit : "", s.live_slot);
  card("previous", status ? s.previous_commit : "", s.previous_slot);
  v["live_health"] = !status || s.live_commit.empty() ? "—"
                     : s.healthy ? "<span class=\"good\">healthy</span>" : "<span class=\"bad\">unhealthy</span>";
  v["operation"] = !status || s.operation.empty()
                       ? "Idle."
                       : escaped(fmt::format("{}{} running: {}", s.operation,
                                             s.operation_commit.empty() ? "" : " of " + s.operation_commit.substr(0, 12),
                                             s.stage));
  const bool can_roll_back = status && !s.previous_slot.empty();
  v["rollback_disabled"] = can_roll_back ? "" : " disabled";
  v["rollback_note"] = !status || can_roll_back || s.live_commit.empty() ? ""
                       : s.previous_replaced.empty()
                           ? "Nothing to roll back to yet."
                           : escaped(fmt::format("Nothing to roll back to: the last deploy used the slot of {}.",
                                                 s.previous_replaced.substr(0, 12)));
  v["dashboard_hidden"] = status ? "" : " hidden";
  std::string out(page);
  for (const auto& [key, html] : v) {
    const std::string mark = "@@" + key + "@@";
    for (size_t at; (at = out.find(mark)) != std::string::npos;) out.replace(at, mark.size(), html);
  }
  return out;
}

Dashboard::Dashboard(app::App& daemon, git::Repository repo, std::optional<std::string> token, bool https)
    : app_(daemon), repo_(std::move(repo)), token_(std::move(token)), https_(https) {}

bool Dashboard::is_open(const httplib::Request& req) {
  if (req.method == "POST") return req.path == "/ui/login";
  if (req.method != "GET") return false;
  return req.path == "/ui" || req.path == "/ui/" || req.path == "/ui/session" || req.path == "/favicon.ico" ||
         find_asset(req.path) != nullptr;
}

Dashboard::Access Dashboard::access(const httplib::Request& req, std::string& why) {
  const auto csrf = sessions_.csrf_of(cookie_value(req.get_header_value("Cookie"), kCookie));
  if (!csrf) return Access::None;
  if (req.method == "GET" || req.method == "HEAD") return Access::Allowed;
  if (!edge::equal_constant_time(req.get_header_value("X-CSRF-Token"), *csrf)) {
    why = "cross-site request refused: a POST with the session cookie must carry the page's X-CSRF-Token";
    return Access::Forbidden;
  }
  return Access::Allowed;
}

void Dashboard::add_routes(httplib::Server& s, const std::atomic<bool>& stopping) {
  s.Get("/ui", [](const httplib::Request&, httplib::Response& res) {
    res.status = 308;
    res.set_header("Location", "/ui/");
  });
  s.Get(R"(/ui/([a-z]+\.[a-z]+)?)", [this](const httplib::Request& req, httplib::Response& res) {
    const bool index = req.path == "/ui/" || req.path == "/ui/index.html";
    const Asset* a = find_asset(index ? "/ui/index.html" : req.path);
    if (!a) {
      reply(res, 404, {{"error", fmt::format("no such page: {}", req.path)}});
      return;
    }
    page_headers(res);
    std::string why;
    // The first state is in the HTML (a screenshot without scripts shows it), but only
    // to whoever may see it: with a token, a logged-in session.
    const bool may_see = !token_ || access(req, why) == Access::Allowed;
    res.set_content(index ? render_index(a->body, may_see ? std::optional(app_.status()) : std::nullopt)
                          : std::string(a->body),
                    std::string(a->type));
  });
  s.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) {
    const Asset* icon = find_asset("/ui/favicon.svg");
    res.set_header("Cache-Control", "max-age=86400");
    res.set_content(std::string(icon->body), std::string(icon->type));
  });

  s.Get("/ui/session", [this](const httplib::Request& req, httplib::Response& res) {
    const auto csrf = sessions_.csrf_of(cookie_value(req.get_header_value("Cookie"), kCookie));
    res.set_header("Cache-Control", "no-store");
    reply(res, 200, {{"token_required", token_.has_value()}, {"logged_in", csrf.has_value()},
                     {"csrf", csrf.value_or("")}});
  });
  s.Post("/ui/login", [this](const httplib::Request& req, httplib::Response& res) {
    if (!token_) {
      reply(res, 400, {{"error", "this daemon has no API token: there is nothing to log in to"}});
      return;
    }
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
      reply(res, 400, {{"error", R"(the body must be {"token": "<the API token>"})"}});
      return;
    }
    if (!edge::bearer_matches("Bearer " + body["token"].get<std::string>(), *token_)) {
      reply(res, 401, {{"error", "the token is wrong"}});
      return;
    }
    const Sessions::Login login = sessions_.create();
    res.set_header("Set-Cookie", fmt::format("{}={}; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict{}", kCookie,
                                             login.id, https_ ? "; Secure" : ""));
    res.set_header("Cache-Control", "no-store");
    reply(res, 200, {{"logged_in", true}, {"csrf", login.csrf}});
  });
  s.Post("/ui/logout", [this](const httplib::Request& req, httplib::Response& res) {
    sessions_.remove(cookie_value(req.get_header_value("Cookie"), kCookie));
    res.set_header("Set-Cookie", fmt::format("{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}", kCookie,
                                             https_ ? "; Secure" : ""));
    reply(res, 200, {{"logged_in", false}});
  });

  s.Get("/events", [this, &stopping](const httplib::Request&, httplib::Response& res) {
    if (++feeds_ > kMaxEventFeeds) {
      --feeds_;
      reply(res, 503, {{"error", fmt::format("already {} event streams open; close a dashboard tab and try again",
                                             kMaxEventFeeds)}});
      return;
    }
    auto feed = std::make_shared<EventFeed>(app_.events());
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider(
        "text/event-stream",
        [feed, &stopping](size_t, httplib::DataSink& sink) {
          if (stopping) {
            sink.done();
            return true;
          }
          std::string text = feed->next(std::chrono::milliseconds(500));
          // A comment when there is nothing: a browser that went away is noticed here.
          if (text.empty()) text = ": idle\n\n";
          return sink.write(text.data(), text.size());
        },
        [this](bool) { --feeds_; });
  });

  s.Get("/revisions", [this](const httplib::Request&, httplib::Response& res) {
    try {
      json recent = json::array();
      for (const auto& c : repo_.recent(20)) recent.push_back(commit_json(c));
      reply(res, 200, {{"branches", repo_.refs("refs/heads/")}, {"tags", repo_.refs("refs/tags/")}, {"recent", recent}});
    } catch (const std::exception& e) {
      reply(res, 500, {{"error", e.what()}});
    }
  });
  s.Get(R"(/commits/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      reply(res, 200, commit_json(repo_.describe(req.matches[1])));
    } catch (const git::GitError& e) {
      reply(res, e.kind() == git::ErrorKind::UnknownRevision ? 404 : 400, {{"error", e.what()}});
    }
  });
}

}  // namespace sm::ui
