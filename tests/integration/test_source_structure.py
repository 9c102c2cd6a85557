# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The shape of the module's source, kept true by tests:

  - every member of a configuration struct has a rule in its merge function
    (a member without one would silently stop inheriting);
  - README's "Layout of the source tree" lists every source file, and every
    file it lists exists;
  - the httpd glue depends one way: no file of mod_gettoken/ calls a
    function of a file that calls back into it (read from the built
    objects' symbol tables), and core/ and jose/ call nothing of the glue;
  - each part owns its configuration one way (made and merged by the part,
    held by pointer);
  - every log line has a message id of its own (GTLOGNO, unique), every
    refusal goes through the one refusal logger, README's "Log messages"
    lists exactly the ids of the source, the module logs as itself once;
  - every hook, handler and filter is registered in gettoken_register_hooks;
  - nothing cites a document the repository does not have.
"""
import glob
import os
import re
import subprocess

from gt_pki import REPO

SRC = os.path.join(REPO, "mod_gettoken")

# struct -> the function that merges it
MERGES = {
    "gettoken_server_conf": "gettoken_merge_server_conf",
    "gettoken_dir_conf": "gettoken_merge_dir_conf",
    "gettoken_keys_conf": "gettoken_keys_merge",
    "gettoken_identity_conf": "gettoken_identity_merge",
    "gettoken_binding_conf": "gettoken_binding_merge",
    "gettoken_organizations_conf": "gettoken_organizations_merge",
    "gettoken_pairing_conf": "gettoken_pairing_merge",
    "gettoken_audit_conf": "gettoken_audit_merge",
    "gettoken_watch_verify": "gettoken_watch_verify_merge",
    "gettoken_watch_enrollment": "gettoken_watch_enrollment_merge",
}


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def glue_text():
    text = ""
    for path in sorted(glob.glob(os.path.join(SRC, "*.[ch]"))):
        with open(path) as f:
            text += strip_comments(f.read()) + "\n"
    return text


def struct_members(text, name):
    """The member names of `typedef struct {...} name;` or `struct name {...};`."""
    m = (re.search(r"typedef\s+struct\s*\w*\s*\{([^{}]*)\}\s*%s\s*;" % name, text)
         or re.search(r"struct\s+%s\s*\{([^{}]*)\}\s*;" % name, text))
    assert m, "struct %s not found" % name
    members = []
    for decl in m.group(1).split(";"):
        decl = re.sub(r"\[[^\]]*\]", "", decl).strip()
        if decl:
            members.append(re.findall(r"\w+", decl)[-1])
    return members


def function_body(text, name):
    """The body of the function `name` (its definition, not a declaration)."""
    for m in re.finditer(r"\b%s\b\s*[(,]" % name, text):
        rest = text[m.end():]
        brace, semi = rest.find("{"), rest.find(";")
        if brace < 0 or (0 <= semi < brace):
            continue
        depth, i = 0, brace
        while True:
            depth += {"{": 1, "}": -1}.get(rest[i], 0)
            if depth == 0:
                return rest[brace:i + 1]
            i += 1
    raise AssertionError("no definition of %s" % name)


def unmerged(text, struct, merge):
    body = function_body(text, merge)
    return [m for m in struct_members(text, struct)
            if not re.search(r"(->|\.)%s\b" % m, body)
            and not re.search(r"GETTOKEN_MERGE_FLAGGED\([^)]*\b%s\b" % m, body)]


def test_merge_check_finds_a_missing_rule():
    # guards the parsing below: a member left out is reported
    text = """typedef struct { int a; const char *b[3]; apr_int64_t c; int c_set; } t_conf;
    static void t_merge(t_conf *conf, const t_conf *base, const t_conf *add)
    { conf->a = add->a; GETTOKEN_MERGE_FLAGGED(conf, base, add, c, c_set); }"""
    assert unmerged(text, "t_conf", "t_merge") == ["b"]


def test_every_config_member_has_a_merge_rule():
    text = glue_text()
    for struct, merge in MERGES.items():
        assert unmerged(text, struct, merge) == [], struct


def test_every_config_sub_struct_has_a_merge_function():
    text = glue_text()
    typed = (re.findall(r"\}\s*(gettoken_\w+_conf)\s*;", text)
             + re.findall(r"struct\s+(gettoken_\w+_conf)\s*\{", text))
    assert len(typed) >= 8
    assert set(typed) <= set(MERGES), set(typed) - set(MERGES)


def test_every_part_owns_its_config_one_way():
    """A part's configuration is a pointer in gettoken_server_conf, made and
    merged by the part (gettoken_<part>_create / gettoken_<part>_merge),
    never a struct embedded in the server's."""
    text = glue_text()
    server = re.search(r"typedef struct \{([^{}]*)\}\s*gettoken_server_conf", text).group(1)
    assert not re.search(r"\bgettoken_\w+_conf\s+\w+\s*;", server), "an embedded part"
    parts = re.findall(r"(?:struct\s+)?(gettoken_\w+)\s*\*\s*(\w+)\s*;", server)
    assert len(parts) >= 8, parts
    create = function_body(text, "gettoken_create_server_conf")
    merge = function_body(text, "gettoken_merge_server_conf")
    for typ, member in parts:
        assert typ in MERGES, typ
        part_merge = MERGES[typ]
        part_create = part_merge[:-len("_merge")] + "_create"
        assert re.search(r"conf->%s = %s\(p\)" % (member, part_create), create), member
        assert re.search(r"conf->%s = %s\(\s*p, base->%s,\s*add->%s\)"
                         % (member, part_merge, member, member), merge), member


# --- README's layout table ----------------------------------------------------
def layout_paths():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    section = readme.split("## Layout of the source tree", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in section.splitlines():
        if line.startswith("| `"):
            paths += re.findall(r"`([^`]+)`", line.split("|")[1])
    return paths


def test_layout_table_lists_every_source_file():
    listed = set(layout_paths())
    assert "mod_gettoken/mod_gettoken.c" in listed
    sources = [os.path.relpath(p, REPO)
               for pattern in ("*.[ch]", "core/*.[ch]", "jose/*.[ch]")
               for p in glob.glob(os.path.join(SRC, pattern))]
    assert len(sources) > 30
    missing = sorted(set(sources) - listed)
    assert missing == [], "not in README's layout table: %s" % missing


def test_layout_table_lists_only_what_exists():
    for path in layout_paths():
        assert os.path.exists(os.path.join(REPO, path)), path


# --- one-way calls --------------------------------------------------------------
def symbols(obj):
    """(functions defined, symbols used) of an object file."""
    out = subprocess.run(["nm", obj], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] == "T":
            defined.add(parts[2])
    return defined, used


def call_graph(objs):
    syms = {os.path.basename(o)[:-2]: symbols(o) for o in objs}
    owner = {f: name for name, (defined, _) in syms.items() for f in defined}
    return {name: {owner[s] for s in used if s in owner and owner[s] != name}
            for name, (_, used) in syms.items()}


def cycles(graph):
    """Pairs (a, b) where a reaches b and b reaches a."""
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    reached = {n: reach(n) for n in graph}
    return sorted((a, b) for a in graph for b in reached[a] if a < b and a in reached[b])


def test_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ("a", "b"), ("a", "c"), ("b", "c")]


def test_glue_calls_run_one_way():
    objs = glob.glob(os.path.join(SRC, ".libs", "*.o"))
    assert len(objs) >= 15, "build the module first (make)"
    graph = call_graph(objs)
    assert "mod_gettoken" in graph and graph["mod_gettoken"], graph
    assert cycles(graph) == []


def test_core_calls_nothing_of_the_glue():
    glue = glob.glob(os.path.join(SRC, ".libs", "*.o"))
    core = (glob.glob(os.path.join(SRC, "core", ".libs", "*.o"))
            + glob.glob(os.path.join(SRC, "jose", ".libs", "*.o")))
    assert core, "build the module first (make)"
    graph = call_graph(glue + core)
    core_names = {os.path.basename(o)[:-2] for o in core}
    glue_names = {os.path.basename(o)[:-2] for o in glue}
    for name in core_names:
        assert not graph[name] & glue_names, (name, graph[name] & glue_names)


# --- log lines: ids, the one refusal logger, hooks in one place -----------------
LOG_CALL_RX = re.compile(r"\bap_log_(?:r|p|c)?error\s*\(")
LOGNO_RX = re.compile(r"GTLOGNO\((\d{5})\)")
REFUSAL_LOGGER = "gettoken_refuse"


def call_args(text, start):
    """The text of a call's parentheses, from the "(" at text[start - 1]."""
    depth, i = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1]


def glue_files():
    """{file name: its text without comments}, every glue file."""
    out = {}
    for path in sorted(glob.glob(os.path.join(SRC, "*.[ch]"))):
        with open(path) as f:
            out[os.path.basename(path)] = strip_comments(f.read())
    return out


def log_calls(files):
    """(file, the call's arguments) of every ap_log_*error() call."""
    return [(name, call_args(text, m.end()))
            for name, text in files.items() for m in LOG_CALL_RX.finditer(text)]


def id_passing_helpers(files):
    """Functions that take the caller's id (a `const char *id` parameter)."""
    helpers = set()
    for text in files.values():
        for m in re.finditer(r"(\w+)\s*\(([^;{)]*\bconst char \*id\b[^;{)]*)\)\s*\{", text):
            helpers.add(m.group(1))
    return helpers


def id_problems(files):
    """Log calls without an id of their own, and ids used twice."""
    problems, seen = [], {}
    for name, args in log_calls(files):
        ids = LOGNO_RX.findall(args)
        # the refusal logger writes the id its caller passed
        if not ids and not (name == "gettoken_refusal.c" and re.match(
                r'[^"]*"%s', args.split(",", 4)[-1].strip())):
            problems.append("%s: a log line without GTLOGNO(): %.60s" % (name, args))
    helpers = id_passing_helpers(files) | {REFUSAL_LOGGER}
    for name, text in files.items():
        for helper in helpers:
            for m in re.finditer(r"\b%s\s*\(" % helper, text):
                args = call_args(text, m.end())
                if re.search(r"\bconst char \*id\b", args):
                    continue        # its definition or prototype
                if not LOGNO_RX.search(args) and not re.search(r"\bid\b", args):
                    problems.append("%s: %s() without an id" % (name, helper))
    for name, text in files.items():
        for n in LOGNO_RX.findall(text):
            if n in seen:
                problems.append("GT%s in %s and %s" % (n, seen[n], name))
            seen[n] = name
    return problems


def test_id_check_finds_missing_and_repeated_ids():
    files = {"a.c": 'x() { ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GTLOGNO(00001) "a");\n'
                    'ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "gettoken: b"); }',
             "b.c": 'static int refuse(request_rec *r, const char *id, int status) {'
                    ' gettoken_refuse(r, GT_REFUSED_GETTOKEN, status, id, "c"); }\n'
                    'y() { refuse(r, GTLOGNO(00001), 403); refuse(r, "x", 400); }'}
    problems = id_problems(files)
    assert len(problems) == 3, problems
    assert any("without GTLOGNO" in p for p in problems)
    assert any("refuse() without an id" in p for p in problems)
    assert any("GT00001 in a.c and b.c" in p for p in problems)


def test_every_log_line_has_its_own_id():
    files = glue_files()
    assert len(log_calls(files)) > 40
    assert id_problems(files) == []


def test_core_and_jose_never_log():
    for pattern in ("core/*.[ch]", "jose/*.[ch]"):
        for path in glob.glob(os.path.join(SRC, pattern)):
            with open(path) as f:
                assert not LOG_CALL_RX.search(f.read()), path


def test_every_refusal_goes_through_the_one_logger():
    """No log line but the refusal logger's says "refused (4xx)" or
    "failed (5xx)": a refusal written by hand would escape its level,
    format and grouping."""
    for name, args in log_calls(glue_files()):
        if name == "gettoken_refusal.c":
            continue
        assert not re.search(r"\((?:[45]\d\d|%d)\)", args), (name, args[:80])


def hand_written_refusals(files):
    """A request's log line followed by returning an HTTP error status: a
    refusal that bypasses the one logger."""
    found = []
    for name, text in files.items():
        for m in re.finditer(r"\bap_log_rerror\s*\(", text):
            end = m.end() + len(call_args(text, m.end())) + 1
            after = text[end:end + 200]
            if re.match(r"\s*;\s*return\s+(HTTP_\w+|gettoken_retry_later)", after):
                found.append(name)
    return found


def test_refusal_check_finds_a_hand_written_one():
    files = {"a.c": 'int f(request_rec *r) {\n ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,'
                    ' GTLOGNO(00001) "no (%s)", why);\n return HTTP_FORBIDDEN; }'}
    assert hand_written_refusals(files) == ["a.c"]


def test_no_refusal_is_written_by_hand():
    assert hand_written_refusals(glue_files()) == []


def test_the_module_logs_as_itself_once():
    files = glue_files()
    users = [n for n, t in files.items() if "APLOG_USE_MODULE" in t]
    assert users == ["gettoken_private.h"], users
    assert "AP_DECLARE_MODULE" not in files["mod_gettoken.c"]   # it would repeat it


HOOK_CALL_RX = re.compile(r"\b(ap_hook_\w+|ap_register_(?:input|output)_filter\w*|"
                          r"APR_OPTIONAL_HOOK|APR_REGISTER_OPTIONAL_FN|"
                          r"gettoken_hook_\w+)\s*\(")


def test_every_hook_is_registered_in_register_hooks():
    files = glue_files()
    elsewhere = [(n, m.group(1)) for n, t in files.items() if n != "mod_gettoken.c"
                 for m in HOOK_CALL_RX.finditer(t)]
    assert elsewhere == [], elsewhere
    body = function_body(files["mod_gettoken.c"], "gettoken_register_hooks")
    outside = HOOK_CALL_RX.findall(files["mod_gettoken.c"].replace(body, ""))
    assert outside == [], outside
    for hook in ("ap_hook_handler", "ap_hook_post_config", "ap_register_input_filter",
                 "APR_OPTIONAL_HOOK", "APR_REGISTER_OPTIONAL_FN", "gettoken_hook_generate_token"):
        assert hook in body, hook


def readme_log_ids():
    with open(os.path.join(REPO, "README.md")) as f:
        section = f.read().split("### Log messages", 1)[1].split("\n#", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `GT(\d{5})` \|", section, re.M)]


def test_readme_lists_every_log_id_once():
    """README's "Log messages" table is the operator's reference: every id
    of the source, each once, and none that the source no longer has."""
    listed = readme_log_ids()
    assert len(listed) == len(set(listed)), "listed twice"
    in_source = {n for text in glue_files().values() for n in LOGNO_RX.findall(text)}
    assert len(in_source) > 40
    assert sorted(in_source - set(listed)) == [], "ids missing from README"
    assert sorted(set(listed) - in_source) == [], "README lists ids the source lacks"


def test_no_reference_to_documents_outside_the_repository():
    """Rules are stated where they apply, not cited from a document the
    repository does not have."""
    found = []
    for top in ("mod_gettoken", "tests", "bench", "conf", "debian", "README.md"):
        path = os.path.join(REPO, top)
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
            if f.endswith((".c", ".h", ".py", ".md", ".conf", ".sh", ".txt"))]
        for name in files:
            with open(name, errors="replace") as f:
                text = f.read()
            # a section sign is fine after a public RFC's number
            if "CON" "TRACT" in text or re.search(r"(?<!RFC \d{4} )\u00a7", text):
                found.append(os.path.relpath(name, REPO))
    assert found == [], found
