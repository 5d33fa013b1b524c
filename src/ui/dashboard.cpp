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


/// `page` with each @@key@@ replaced by its HTML.
std::string filled(std::string_view page, const std::map<std::string, std::string>& v) {
  std::string out(page);
  for (const auto& [key, html] : v) {
    const std::string mark = "@@" + key + "@@";
    for (size_t at; (at = out.find(mark)) != std::string::npos;) out.replace(at, mark.size(), html);
  }
  return out;
}

/// The repository of `app`, opened for this request; nullopt when it does not open.
std::optional<git::Repository> repo_of(const app::Listed& app) {
  try {
    return git::Repository::open(app.repo);
  } catch (const git::GitError&) {
    return std::nullopt;
  }
}

/// The app an endpoint of the page is for: /apps/NAME/... or the only one. Null after
/// answering why not.
std::optional<app::Listed> app_for(const app::Directory& apps, const httplib::Request& req, httplib::Response& res) {
  const auto list = apps.list();
  const bool named = req.matches.size() > 1 && req.matches[1].matched;
  const auto found = app::Directory::lookup(*list, named ? std::optional(req.matches[1].str()) : std::nullopt);
  if (!found.listed) {
    reply(res, found.status, {{"error", found.error}});
    return std::nullopt;
  }
  return *found.listed;
}

}  // namespace

std::string Dashboard::render_index(std::string_view page, const std::optional<app::Status>& status,
                                    const app::Listed& app, const std::string& base) {
  std::map<std::string, std::string> v;  // placeholder -> HTML
  const auto repo = status ? repo_of(app) : std::nullopt;
  auto card = [&](const std::string& side, const std::string& hash, const std::string& slot) {
    std::string subject = "—", author = "—";
    if (!hash.empty() && repo) try {
        const git::CommitInfo c = repo->describe(hash);
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
  v["base"] = escaped(base);
  v["title"] = base.empty() ? "slot-machine" : escaped("slot-machine: " + app.name);
  v["heading"] = base.empty() ? "slot-machine" : "<a href=\"/ui/\">slot-machine</a>: " + escaped(app.name);
  return filled(page, v);
}

std::string Dashboard::render_apps(std::string_view page, bool may_see) {
  std::string rows;
  if (may_see)
    for (const auto& l : *apps_.list()) {
      std::string hosts;
      for (const auto& h : l.hosts) hosts += (hosts.empty() ? "" : " ") + h;
      std::string live = "—", health = "—", running;
      if (!l.app) {
        health = "<span class=\"bad\">not running</span> <span class=\"error-detail\">" + escaped(l.error) + "</span>";
      } else {
        const app::Status s = l.app->status();
        if (!s.live_commit.empty()) {
          live = "<span class=\"hash\">" + escaped(s.live_commit.substr(0, 12)) + "</span>";
          health = s.healthy ? "<span class=\"good\">healthy</span>" : "<span class=\"bad\">unhealthy</span>";
        }
        running = escaped(s.operation.empty() ? "" : s.operation + " (" + s.stage + ")");
      }
      rows += fmt::format("<tr data-app=\"{0}\"><td><a href=\"/ui/apps/{0}/\">{0}</a></td><td>{1}</td><td>{2}</td>"
                          "<td>{3}</td><td>{4}</td></tr>",
                          escaped(l.name), escaped(hosts), live, health, running);
    }
  return filled(page, {{"app_rows", rows}, {"apps_hidden", may_see ? "" : " hidden"},
                       {"connection", may_see ? "connected" : "not logged in"}});
}

void Dashboard::app_page(const httplib::Request& req, httplib::Response& res, const std::optional<std::string>& name) {
  const auto list = apps_.list();
  // The page of an app that does not run is served too, without a state to show.
  const app::Listed* l = name ? app::Directory::find(*list, *name) : list->size() == 1 ? &list->front() : nullptr;
  if (!l) {
    reply(res, 404, {{"error", fmt::format("no such page: {}", req.path)}});
    return;
  }
  page_headers(res);
  std::string why;
  // The first state is in the HTML (a screenshot without scripts shows it), but only
  // to whoever may see it: with a token, a logged-in session.
  const bool may_see = !token_ || access(req, why) == Access::Allowed;
  const Asset* a = find_asset("/ui/index.html");
  res.set_content(render_index(a->body, may_see && l->app ? std::optional(l->app->status()) : std::nullopt, *l,
                               name ? "/apps/" + *name : ""),
                  std::string(a->type));
}

Dashboard::Dashboard(const app::Directory& apps, std::optional<std::string> token, bool https)
    : apps_(apps), token_(std::move(token)), https_(https) {}

bool Dashboard::is_open(const httplib::Request& req) {
  if (req.method == "POST") return req.path == "/ui/login";
  if (req.method != "GET") return false;
  return req.path == "/ui" || req.path == "/ui/" || req.path == "/ui/session" || req.path == "/favicon.ico" ||
         find_asset(req.path) != nullptr || (req.path.starts_with("/ui/apps/") && req.path.ends_with("/"));
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
    if (index && apps_.list()->size() != 1) {  // several apps (or none running): the list
      page_headers(res);
      std::string why;
      const Asset* list = find_asset("/ui/apps.html");
      res.set_content(render_apps(list->body, !token_ || access(req, why) == Access::Allowed), std::string(list->type));
      return;
    }
    if (index) {
      app_page(req, res, std::nullopt);
      return;
    }
    const Asset* a = find_asset(req.path);
    if (!a) {
      reply(res, 404, {{"error", fmt::format("no such page: {}", req.path)}});
      return;
    }
    page_headers(res);
    res.set_content(std::string(a->body), std::string(a->type));
  });
  s.Get(R"(/ui/apps/([^/]*)/)", [this](const httplib::Request& req, httplib::Response& res) {
    app_page(req, res, req.matches[1].str());
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

  s.Get(R"((?:/apps/([^/]*))?/events)", [this, &stopping](const httplib::Request& req, httplib::Response& res) {
    const auto app = app_for(apps_, req, res);
    if (!app) return;
    if (++feeds_ > kMaxEventFeeds) {
      --feeds_;
      reply(res, 503, {{"error", fmt::format("already {} event streams open; close a dashboard tab and try again",
                                             kMaxEventFeeds)}});
      return;
    }
    auto feed = std::make_shared<EventFeed>(app->app->events());
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider(
        "text/event-stream",
        [feed, keep = app->app, &stopping](size_t, httplib::DataSink& sink) {
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

  s.Get(R"((?:/apps/([^/]*))?/revisions)", [this](const httplib::Request& req, httplib::Response& res) {
    const auto app = app_for(apps_, req, res);
    if (!app) return;
    try {
      const git::Repository repo = git::Repository::open(app->repo);
      json recent = json::array();
      for (const auto& c : repo.recent(20)) recent.push_back(commit_json(c));
      reply(res, 200, {{"branches", repo.refs("refs/heads/")}, {"tags", repo.refs("refs/tags/")}, {"recent", recent}});
    } catch (const std::exception& e) {
      reply(res, 500, {{"error", e.what()}});
    }
  });
  s.Get(R"((?:/apps/([^/]*))?/commits/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const auto app = app_for(apps_, req, res);
    if (!app) return;
    try {
      reply(res, 200, commit_json(git::Repository::open(app->repo).describe(req.matches[2])));
    } catch (const git::GitError& e) {
      reply(res, e.kind() == git::ErrorKind::UnknownRevision ? 404 : 400, {{"error", e.what()}});
    }
  });
}

}  // namespace sm::ui
