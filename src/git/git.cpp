#include "git/git.h"
#include "git/handles.h"

#include <fmt/format.h>
#include <git2.h>

#include <algorithm>
#include <fstream>
#include <string_view>

namespace sm::git {
namespace fs = std::filesystem;
using namespace detail;


Library::Library() {
  git_libgit2_init();
  // The repositories and slots are the ones the config names; a server's app with
  // "user" owns its slots, which the daemon (root) must still open. Git's ownership
  // check guards against a repository planted in a shared directory, which is not how
  // these paths are chosen.
  git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
}
Library::~Library() { git_libgit2_shutdown(); }

Repository::Handle Repository::handle() const {
  Handle h;
  if (git_repository_open_ext(&h.p, gitdir_.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    throw GitError(ErrorKind::NotARepository,
                   fmt::format("cannot open the repository at {}: {}", gitdir_.string(), last_error()));
  add_extra_objects(h.p);
  return h;
}

void Repository::add_extra_objects(git_repository* r) const {
  if (extra_objects_.empty()) return;
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, r) != 0)
    throw GitError(ErrorKind::Other, fmt::format("cannot open the object database: {}", last_error()));
  for (const auto& dir : extra_objects_)
    if (git_odb_add_disk_alternate(odb, dir.c_str()) != 0) {
      git_odb_free(odb);
      throw GitError(ErrorKind::Other, fmt::format("cannot read objects from {}: {}", dir.string(), last_error()));
    }
  git_odb_free(odb);
}

fs::path Repository::objects_dir() const {
  const Handle repo = handle();
  return fs::path(git_repository_commondir(repo.p)) / "objects";
}

fs::path Repository::hooks_dir() const {
  const Handle repo = handle();
  git_buf out = GIT_BUF_INIT;
  if (git_repository_item_path(&out, repo.p, GIT_REPOSITORY_ITEM_HOOKS) != 0)
    throw GitError(ErrorKind::Other, fmt::format("cannot find the hooks directory: {}", last_error()));
  fs::path p(out.ptr);
  git_buf_dispose(&out);
  return p;
}

std::string Repository::head_branch() const {
  const Handle repo = handle();
  git_reference* head = nullptr;
  if (git_reference_lookup(&head, repo.p, "HEAD") != 0) return "";
  std::string branch;
  if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
    const std::string target = git_reference_symbolic_target(head);
    if (target.rfind("refs/heads/", 0) == 0) branch = target.substr(11);
  }
  git_reference_free(head);
  return branch;
}

namespace {
CommitInfo info_of(const git_commit* c) {
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof hex, git_commit_id(c));
  const char* summary = git_commit_summary(const_cast<git_commit*>(c));
  const git_signature* author = git_commit_author(c);
  return {hex, summary ? summary : "", author && author->name ? author->name : "",
          static_cast<long long>(git_commit_time(c))};
}
}  // namespace

CommitInfo Repository::describe(const std::string& rev) const {
  const std::string hash = resolve(rev);
  const Handle repo = handle();
  git_oid oid;
  Commit c;
  if (git_oid_fromstr(&oid, hash.c_str()) != 0 || git_commit_lookup(&c.p, repo.p, &oid) != 0)
    throw GitError(ErrorKind::UnknownRevision, fmt::format("cannot read commit {}: {}", hash, last_error()));
  return info_of(c.p);
}

std::vector<std::string> Repository::refs(const std::string& prefix) const {
  const Handle repo = handle();
  git_strarray names{};
  std::vector<std::string> out;
  if (git_reference_list(&names, repo.p) != 0) return out;
  for (size_t i = 0; i < names.count; ++i) {
    const std::string_view name(names.strings[i]);
    if (name.starts_with(prefix)) out.emplace_back(name.substr(prefix.size()));
  }
  git_strarray_dispose(&names);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<CommitInfo> Repository::recent(size_t n) const {
  const Handle repo = handle();
  std::vector<CommitInfo> out;
  git_revwalk* walk = nullptr;
  if (git_revwalk_new(&walk, repo.p) != 0) return out;
  git_revwalk_sorting(walk, GIT_SORT_TIME);
  if (git_revwalk_push_head(walk) == 0) {
    git_oid oid;
    while (out.size() < n && git_revwalk_next(&oid, walk) == 0) {
      Commit c;
      if (git_commit_lookup(&c.p, repo.p, &oid) == 0) out.push_back(info_of(c.p));
    }
  }
  git_revwalk_free(walk);
  return out;
}

namespace {
struct FetchAuth {
  std::string token;
  int tries = 0;
};

int credentials(git_credential** out, const char* /*url*/, const char* user, unsigned int allowed, void* payload) {
  auto* auth = static_cast<FetchAuth*>(payload);
  if (++auth->tries > 3) return GIT_EAUTH;  // libgit2 asks again after a refusal: stop
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0)
    return git_credential_ssh_key_from_agent(out, user ? user : "git");
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0 && !auth->token.empty())
    return git_credential_userpass_plaintext_new(out, user ? user : "x-access-token", auth->token.c_str());
  return GIT_PASSTHROUGH;
}
}  // namespace

void Repository::fetch(const std::string& remote, const fs::path& token_file) const {
  const Handle repo = handle();
  git_remote* r = nullptr;
  if (git_remote_lookup(&r, repo.p, remote.c_str()) != 0)
    throw GitError(ErrorKind::Other, fmt::format("no remote \"{}\" in {}: {}; add it with `git remote add {} URL`",
                                                 remote, gitdir_.string(), last_error(), remote));
  FetchAuth auth;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::getline(in, auth.token);
    if (!in && auth.token.empty()) {
      git_remote_free(r);
      throw GitError(ErrorKind::Other, fmt::format("cannot read the token file {}", token_file.string()));
    }
  }
  git_fetch_options opts;
  git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
  opts.callbacks.credentials = credentials;
  opts.callbacks.payload = &auth;
  const int rc = git_remote_fetch(r, nullptr, &opts, "slot-machine fetch");
  const std::string url = git_remote_url(r) ? git_remote_url(r) : "";
  git_remote_free(r);
  if (rc != 0)
    throw GitError(ErrorKind::Other, fmt::format("fetch of remote \"{}\" ({}) failed: {}", remote, url, last_error()));
}

Repository Repository::at(git_repository* r) {
  const Repo owned{r};
  const char* w = git_repository_workdir(r);
  fs::path gitdir = git_repository_path(r);
  return Repository(gitdir, w ? fs::path(w) : gitdir);
}

void check_revision_syntax(const std::string& rev) {
  if (rev.empty()) throw GitError(ErrorKind::InvalidRevision, "commit must not be empty");
  if (rev[0] == '-')
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("commit \"{}\" must not start with '-'", rev));
  if (rev.size() > 256)
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("commit is {} bytes long; at most 256 allowed", rev.size()));
  for (unsigned char ch : rev)
    if (ch < 0x20 || ch == 0x7f)
      throw GitError(ErrorKind::InvalidRevision, "commit contains control characters");
  // Commit-message searches run a regular expression in libgit2, whose PCRE2 match
  // leaks memory on every call (found by fuzz/revision_fuzz.cpp); nobody deploys by them.
  if (rev.rfind(":/", 0) == 0 || rev.find("^{/") != std::string::npos)
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("commit \"{}\": searching commit messages (:/ or ^{{/}}) is not "
                               "supported; give a hash, branch or tag", rev));
}

Repository Repository::open(const fs::path& dir) {
  git_repository* r = nullptr;
  if (git_repository_open_ext(&r, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    throw GitError(ErrorKind::NotARepository,
                   fmt::format("{} is not a git repository: {}", dir.string(), last_error()));
  return at(r);
}

Repository Repository::discover(const fs::path& dir) {
  git_repository* r = nullptr;
  if (git_repository_open_ext(&r, dir.c_str(), 0, nullptr) != 0)
    throw GitError(ErrorKind::NotARepository,
                   fmt::format("{} is not inside a git repository", dir.string()));
  return at(r);
}

namespace {

bool all_hex(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

/// The object a plain name (no ~ ^ @ : { }) names, the way git_revparse_single would
/// find it but without its `git describe` parsing, which runs a PCRE2 regular expression
/// that leaks ~20 KB on every call in Debian's libgit2 1.5 (found by fuzzing): a ref
/// (HEAD, branch, tag, remote branch), else an abbreviated hash, else the hash at the end
/// of a describe string (v1.2-3-gabc1234). Returns libgit2's error code.
int lookup_plain(git_object** out, git_repository* repo, const std::string& rev) {
  git_reference* ref = nullptr;
  int rc = git_reference_dwim(&ref, repo, rev.c_str());
  if (rc == 0) {
    rc = git_reference_peel(out, ref, GIT_OBJECT_ANY);
    git_reference_free(ref);
    return rc;
  }
  if (rc != GIT_ENOTFOUND && rc != GIT_EINVALIDSPEC) return rc;
  std::string_view hex = rev;
  if (!all_hex(hex)) {
    const size_t g = rev.rfind("-g");
    if (g == std::string::npos) return rc;
    hex = std::string_view(rev).substr(g + 2);
    if (!all_hex(hex)) return rc;
  }
  if (hex.size() < 4 || hex.size() > GIT_OID_HEXSZ) return rc;
  git_oid oid;
  if (git_oid_fromstrn(&oid, hex.data(), hex.size()) != 0) return rc;
  const int found = git_object_lookup_prefix(out, repo, &oid, hex.size(), GIT_OBJECT_ANY);
  return found == GIT_ENOTFOUND ? rc : found;
}

}  // namespace

std::string Repository::resolve(const std::string& rev) const {
  check_revision_syntax(rev);
  const Handle repo = handle();
  Object obj;
  int rc;
  if (rev.find_first_of("~^@:{}") == std::string::npos) {
    rc = lookup_plain(&obj.p, repo.p, rev);
  } else if (rev.find("-g") != std::string::npos) {
    // An expression whose name part holds "-g" would go through the leaking describe
    // parsing (see lookup_plain).
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("commit \"{}\": expressions (~ ^ @ :) on a name containing "
                               "\"-g\" are not supported; give a hash, branch or tag", rev));
  } else {
    rc = git_revparse_single(&obj.p, repo.p, rev.c_str());
  }
  if (rc == GIT_ENOTFOUND)
    throw GitError(ErrorKind::UnknownRevision,
                   fmt::format("unknown commit \"{}\": no such revision in the repository", rev));
  if (rc == GIT_EAMBIGUOUS)
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("commit \"{}\" is ambiguous; give more hex digits", rev));
  if (rc != 0)
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("cannot resolve commit \"{}\": {}", rev, last_error()));
  Object peeled;
  if (git_object_peel(&peeled.p, obj.p, GIT_OBJECT_COMMIT) != 0)
    throw GitError(ErrorKind::InvalidRevision,
                   fmt::format("\"{}\" does not name a commit", rev));
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof hex, git_object_id(peeled.p));
  return hex;
}


}  // namespace sm::git
