"""Hostile inputs for every parser: grammar-built ones, mutations of valid inputs, noise.

`generate(parser, rng, count)` returns `count` strings. File contents are strings too: a
lone surrogate U+DC80..U+DCFF stands for the raw byte 0x80..0xFF (Python's
`surrogateescape`), so non-UTF-8 files travel in the same JSON as everything else. The
inputs depend on `rng` only, so one seed reproduces a whole batch.

Each generator mixes (roughly a third each): a grammar of the parser's language, random
mutations of valid inputs (the fixtures, docs examples and shipped templates: insert a
token, delete/duplicate/swap a span, splice a hostile string, nest), and raw noise (random
characters, control and bidi characters, random bytes). A few deliberately expensive
shapes (YAML alias bombs, deep nesting, 4,000-digit numbers, catastrophic regexes,
recursive templates and jq definitions) are always present, because random search
rarely finds them and they are what an attacker would try first.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PARSERS = ("strvals", "values", "experiment", "template", "jq", "duration", "cron", "kubeconfig")

HOSTILE = [
    "", " ", "\x00", "\t", "\r\n", "\n", "\x1b]0;owned\x07", "\x1b[2J", "\x1b[31m", "\u202e",
    "\u2066", "\ufeff", "\u0130", "\u00df", "\U0001f4a5", "\udc80", "\udcff", "\u2028",
    "9" * 4400, "-" + "9" * 400, "1e999", "-1e999", "1e-999", "0x7fffffffffffffff",
    "18446744073709551616", "-0", "nan", "NaN", ".nan", ".inf", "-.inf", "Infinity", "~",
    "null", "true", "yes", "on", "0o17", "0b101", "007", "1_000", "{", "}", "[", "]", "{{",
    "}}", "\\", "\\\\", '"', "'", "`", ",", "=", ".", "&a", "*a", "!!python/object:os.system",
    "!!binary AAAA", "%YAML 1.1", "---", "...", "<<: *a", "? ", "- ", "|", ">", "#",
    "A" * 70000, "é" * 5000,
]


def _chars(rng: random.Random, n: int) -> str:
    """Random characters: printable ASCII, controls, bidi, astral, escaped bytes."""
    pools = [
        lambda: chr(rng.randrange(32, 127)),
        lambda: chr(rng.randrange(0, 32)),
        lambda: chr(rng.choice([0x7F, 0x85, 0xA0, 0x202A, 0x202E, 0x2066, 0x2069, 0x200B,
                                 0xFEFF, 0x2028])),
        lambda: chr(rng.randrange(0xA0, 0x3000)),
        lambda: chr(rng.randrange(0x1F300, 0x1FAFF)),
        lambda: chr(rng.randrange(0xDC80, 0xDD00)),
    ]
    weights = [70, 8, 5, 8, 4, 5]
    return "".join(rng.choices(pools, weights)[0]() for _ in range(n))


def _bytes(rng: random.Random, n: int) -> str:
    """Random bytes as a surrogateescape'd string (what a binary file decodes to)."""
    return rng.randbytes(n).decode("utf-8", "surrogateescape")


def noise(rng: random.Random) -> str:
    size = rng.choice([0, 1, 2, 5, 20, 100, 1000])
    return _bytes(rng, size) if rng.random() < 0.4 else _chars(rng, size)


def mutate(rng: random.Random, text: str, tokens: list[str], rounds: int | None = None) -> str:
    """Apply 1-4 random edits to `text`, with `tokens` from the parser's vocabulary."""
    for _ in range(rounds or rng.randint(1, 4)):
        n = len(text)
        i = rng.randint(0, n)
        j = min(n, i + rng.choice([0, 1, 2, 5, 20, 200]))
        op = rng.randrange(9)
        if op == 0:
            text = text[:i] + rng.choice(tokens) + text[i:]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:j] + text[i:j] * rng.choice([2, 3, 50]) + text[j:]
        elif op == 3:
            text = text[:i] + rng.choice(HOSTILE) + text[j:]
        elif op == 4 and n:
            k = rng.randint(0, n)
            a, b = sorted((i, k))
            text = text[:a] + text[b:] + text[a:b]
        elif op == 5:
            text = text[:i] + _chars(rng, rng.randint(1, 8)) + text[i:]
        elif op == 6:
            text = text[:i] + _bytes(rng, rng.randint(1, 4)) + text[j:]
        elif op == 7:
            text = text[:i] + rng.choice(tokens) * rng.choice([2, 10, 300]) + text[i:]
        else:
            text = text[:i] + text[i:j].upper() + text[j:]
    return text


def _mixed(rng: random.Random, count: int, grammar: Callable[[random.Random], str],
           seeds: list[str], tokens: list[str], fixed: list[str]) -> list[str]:
    cases = list(fixed)
    while len(cases) < count:
        roll = rng.random()
        if roll < 0.4:
            cases.append(grammar(rng))
        elif roll < 0.8:
            cases.append(mutate(rng, rng.choice(seeds), tokens))
        elif roll < 0.9:
            cases.append(mutate(rng, grammar(rng), tokens))
        else:
            cases.append(noise(rng))
    rng.shuffle(cases)
    return cases[:count]


# -- strvals ---------------------------------------------------------------------------------

_KEYS = ["a", "b", "tasks", "http", "url", "assess", "SLOs", "upper", "http/latency-mean",
         "x\\.y", "a\\,b", "a\\=b", "a\\[0", "é", "ﬁ", "İ", "K", "\\", "", "0"]
_SCALARS = ["1", "0", "-1", "007", "0.5", "1e3", "true", "FALSE", "null", "NULL", "x", "",
            "9223372036854775807", "9223372036854775808", "-9223372036854775809", "9" * 4301,
            "http://127.0.0.1:1/", "a\\,b", "{}", "{a}", '"q"', "\\"]
_STRVALS_TOKENS = [".", ",", "=", "[", "]", "{", "}", "\\", "[0]", "[65537]", "[-1]",
                   "[99999999999999999999]", "{,}", "={{{", ".a", "a."]


def _strvals_key(rng: random.Random, depth: int = 0) -> str:
    parts = [rng.choice(_KEYS)]
    for _ in range(rng.choice([0, 0, 1, 2, 5, 40])):
        if rng.random() < 0.7:
            parts.append("." + rng.choice(_KEYS))
        else:
            parts.append(f"[{rng.choice([0, 1, 2, 7, 65536, 65537, 10**12])}]")
    return "".join(parts)


def _strvals_value(rng: random.Random, depth: int = 0) -> str:
    if depth < 3 and rng.random() < 0.25:
        items = [_strvals_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        return "{" + ",".join(items) + "}"
    if rng.random() < 0.15:
        return json.dumps(rng.choice([{"a": [1, None, "x"]}, [1, 2], "s", 1.5, None, {}]))
    return rng.choice(_SCALARS)


def strvals_grammar(rng: random.Random) -> str:
    pairs = [f"{_strvals_key(rng)}={_strvals_value(rng)}" for _ in range(rng.randint(1, 4))]
    return ",".join(pairs)


STRVALS_SEEDS = [
    "tasks={http,assess}", "http.url=http://127.0.0.1:8080/", "http.numRequests=5",
    "assess.SLOs.upper.http/latency-mean=50", "versionNames={canary,baseline}",
    "a[0].b=1,a[2]=x", "a[0][1]=x", "a={}", "x\\.y=1", 'http.payloadStr={"a":1}',
    "custommetrics.versionValues[1].labels.revision_name=r2", "runner=cronjob",
    "cronjobSchedule=*/1 * * * *", "a.b=1,c=x", "name=value1\\,value2",
]
STRVALS_FIXED = [
    "a=" + "9" * 4301, "a=" + "1" * 100000, "a" + ".a" * 2000 + "=1", "a" + "[0]" * 2000 + "=1",
    "a[65537]=1", "a[99999999999999999999]=1", "a=" + "{" * 1000 + "}" * 1000,
    "a=1,a.b=2", "a[0]=1,a.b=2", "=1", ".a=1", "a.", "a[0]", "\udcff=\udcfe", "a=\x00\x1b]0;x\x07",
    '{"a":' * 1000 + "1" + "}" * 1000, "json:" + "[" * 5000 + "]" * 5000,
]


def strvals(rng: random.Random, count: int) -> list[str]:
    """A --set expression; a leading `json:` or `string:` picks --set-json/--set-string."""
    cases = _mixed(rng, count, strvals_grammar, STRVALS_SEEDS, _STRVALS_TOKENS, STRVALS_FIXED)
    flavours = ["", "", "", "json:", "string:"]
    return [c if c.startswith("json:") else rng.choice(flavours) + c for c in cases]


# -- YAML documents (values files, experiment files) ----------------------------------------

_YAML_TOKENS = ["\n", ": ", "- ", "  ", "{", "}", "[", "]", "&a ", "*a", "<<: ", "!!str ",
                "!!int ", "!!float ", "!!map ", "!!set ", "!!binary ", "!!timestamp ", "? ",
                "|\n  ", ">-\n  ", "'", '"', "#", "---\n", "...\n", "%YAML 1.2\n", "~",
                ".nan", ".inf", "-.inf", "1e999", "9" * 4400, "2024-13-45T99:99:99Z",
                "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "\t", "\\u0000", "null",
                "!!python/object/apply:os.system [ls]", "&x [*x]"]


def alias_bomb(levels: int, width: int = 9, key: str = "lol") -> str:
    lines = [f'{key}0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * width)
        lines.append(f"{key}{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def deep(levels: int, flow: bool) -> str:
    if flow:
        return "a: " + "[" * levels + "]" * levels + "\n"
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "v: 1\n"


def _yaml_value(rng: random.Random, depth: int) -> object:
    if depth > 3 or rng.random() < 0.5:
        return rng.choice([0, -1, 1.5, 10**30, float("nan"), float("inf"), True, None, "",
                           "x", "5s", "http://127.0.0.1:1/", "2024-05-01T12:00:00Z", [], {},
                           "\x1b[2J", "\u202e", "9" * 4400])
    if rng.random() < 0.5:
        return [_yaml_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["task", "run", "with", "if", "spec", "result", "url", "numVersions", "a"]
    return {rng.choice(keys): _yaml_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _yaml_dump(data: object) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    try:
        return yaml.dump(data, Dumper=dumper, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return json.dumps(data)


def _yaml_load(text: str) -> object:
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _yaml_files(rng: random.Random, count: int, seeds: list[str], grammar: Callable[
        [random.Random], str], fixed: list[str]) -> list[str]:
    return _mixed(rng, count, grammar, seeds, _YAML_TOKENS, fixed)


@cache
def _experiment_seeds() -> list[str]:
    paths = sorted((REPO / "tests" / "fixtures" / "reports").glob("*.yaml"))
    paths += sorted((REPO / "tests" / "fixtures" / "iter8").glob("*.yaml"))
    return [p.read_text(encoding="utf-8") for p in paths]


@cache
def _values_seeds() -> list[str]:
    import yaml

    seeds = []
    for path in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        text = path.read_text(encoding="utf-8")
        for block in text.split("```yaml")[1:]:
            body = block.split("```", 1)[0]
            try:
                data = _yaml_load(body)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and "spec" not in data and "apiVersion" not in data:
                seeds.append(body.lstrip("\n"))
    seeds += [
        "tasks: [http, assess]\nhttp:\n  url: http://127.0.0.1:8080/\n  numRequests: 5\n"
        "assess:\n  SLOs:\n    upper:\n      http/latency-mean: 50\n",
        "tasks: [grpc, assess]\ngrpc:\n  host: 127.0.0.1:9000\n  call: a.B/C\n  duration: 1s\n"
        "assess:\n  SLOs:\n    upper:\n      grpc/error-rate: 0\n",
        "tasks: [custommetrics, assess]\ncustommetrics:\n  templates:\n    kserve-prometheus: "
        "kserve-prometheus\n  values:\n    labels: {service_name: s}\n  versionValues:\n"
        "  - labels: {revision_name: r2}\n  - labels: {revision_name: r1}\nassess:\n  SLOs:\n"
        "    upper:\n      kserve-prometheus/error-rate: 0\n",
        "tasks: [http, slack]\nhttp: {url: 'http://127.0.0.1:1/'}\nslack: {url: "
        "'https://hooks.slack.com/x', method: POST}\nrunner: cronjob\ncronjobSchedule: '*/1 * * * *'\n",
    ]
    return seeds


def values_grammar(rng: random.Random) -> str:
    data = {rng.choice(["tasks", "http", "assess", "runner", "versionNames", "ready", "a"]):
            _yaml_value(rng, 0) for _ in range(rng.randint(1, 4))}
    return _yaml_dump(data)


@cache
def _experiment_data() -> list[object]:
    return [_yaml_load(seed) for seed in _experiment_seeds()]


def experiment_grammar(rng: random.Random) -> str:
    data = rng.choice(_experiment_data())  # poke builds a new document; this one stays

    def poke(node: object, depth: int) -> object:
        if isinstance(node, dict):
            return {k: (_yaml_value(rng, 2) if rng.random() < 0.08 else poke(v, depth + 1))
                    for k, v in node.items()}
        if isinstance(node, list):
            items = [poke(v, depth + 1) for v in node]
            if items and rng.random() < 0.1:
                items.append(rng.choice(items))
            return items
        return _yaml_value(rng, 3) if rng.random() < 0.05 else node

    poked = poke(data, 0)
    # JSON is YAML too (flow style), and much faster to write than PyYAML's block style.
    return _yaml_dump(poked) if rng.random() < 0.05 else json.dumps(poked, ensure_ascii=False)


_BIG_RESULT = (
    "spec: []\nresult:\n  startTime: '2024-05-01T12:00:00Z'\n  numLoops: 1\n  numCompletedTasks: 0\n"
    "  failure: false\n  insights:\n    numVersions: {n}\n")

EXPERIMENT_FIXED = [
    alias_bomb(9),
    "spec:\n- run: x\n  with:\n" + "".join(f"    {line}\n" for line in alias_bomb(9).splitlines()),
    deep(1000, flow=True), deep(1000, flow=False),
    _BIG_RESULT.format(n=100000000), _BIG_RESULT.format(n=-1), _BIG_RESULT.format(n="9" * 4400),
    "spec: []\nresult:\n  startTime: '99999-01-01T00:00:00Z'\n  numLoops: 1\n",
    "spec: []\nresult:\n  startTime: 9999999999999999999\n  numLoops: 1\n",
    "spec:\n- task: assess\n  with:\n    SLOs:\n      upper:\n"
    "      - {metric: http/latency-mean, limit: .nan}\n",
    "\udcff\udcfe\x00garbage", "\ufeffspec: []\n", "spec: []\n" + "#" * 100000,
]
VALUES_FIXED = [alias_bomb(9), deep(1000, flow=True), deep(1000, flow=False),
                "tasks: [http]\nhttp: {url: 'http://127.0.0.1:1/', numRequests: " + "9" * 4400 + "}\n",
                "\udcff\udcfe", "tasks:\n" + "- http\n" * 70000,
                "insights: {numVersions: 100000000}\n",
                "tasks: [assess]\nassess: {SLOs: {upper: {http/latency-mean: .nan}}}\n"]


def values(rng: random.Random, count: int) -> list[str]:
    return _yaml_files(rng, count, _values_seeds(), values_grammar, VALUES_FIXED)


def experiment(rng: random.Random, count: int) -> list[str]:
    return _yaml_files(rng, count, _experiment_seeds(), experiment_grammar, EXPERIMENT_FIXED)


# -- Go templates ----------------------------------------------------------------------------

_TPL_FIELDS = [".a", ".s", ".n", ".l", ".m", ".m.b", ".missing", "$", ".", "$x", ".big"]
_TPL_LITERALS = ["1", "0", "-3", "2.5", "1e6", '"x"', '""', "true", "nil", "'a'", "0x1F",
                 "`raw`", "9" * 400, "1e309", '"\\u202e"', '"\\x1b[2J"']
_TPL_FUNCS = ["len", "not", "upper", "quote", "toJson", "toYaml", "fromJson", "int", "float64",
              "add1", "first", "last", "trim", "b64enc", "b64dec", "print", "printf", "html",
              "js", "urlquery", "eq", "lt", "and", "or", "default", "index", "add", "sub", "mul",
              "div", "mod", "max", "min", "join", "split", "list", "dict", "append", "repeat",
              "until", "untilStep", "seq", "regexMatch", "regexFind", "regexReplaceAll",
              "replace", "indent", "nindent", "trunc", "substr", "date", "now", "toDate",
              "duration", "semver", "sha256sum", "fail", "tpl", "include", "required", "slice",
              "kindOf", "typeOf", "hasKey", "keys", "sortAlpha", "uniq", "atoi", "round",
              "ceil", "floor", "toString", "squote", "contains", "hasPrefix", "ternary"]
_TPL_TOKENS = ["{{", "}}", "{{-", "-}}", "{{ end }}", "{{ else }}", "{{ if .a }}",
               "{{ range .l }}", "{{ with .m }}", "{{ define \"t\" }}", "{{ template \"t\" . }}",
               "{{ block \"b\" . }}", "$x := 1", "$x = 2", "|", "(", ")", "\"", "`", "/*", "*/",
               ".", "$", ":=", "{{ break }}", "{{ continue }}", "{{/* c */}}"]


def _tpl_operand(rng: random.Random, depth: int) -> str:
    if depth > 0 and rng.random() < 0.3:
        return f"({_tpl_command(rng, depth - 1)})"
    return rng.choice(_TPL_FIELDS + _TPL_LITERALS)


def _tpl_command(rng: random.Random, depth: int) -> str:
    func = rng.choice(_TPL_FUNCS)
    args = " ".join(_tpl_operand(rng, depth) for _ in range(rng.randint(0, 3)))
    return f"{func} {args}".strip()


def template_grammar(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if roll < 0.5:
            pipe = _tpl_command(rng, 2)
            if rng.random() < 0.3:
                pipe += " | " + _tpl_command(rng, 1)
            parts.append("{{ " + pipe + " }}")
        elif roll < 0.65:
            kw = rng.choice(["if", "with", "range"])
            parts.append(f"{{{{ {kw} {_tpl_operand(rng, 1)} }}}}x{{{{ else }}}}y{{{{ end }}}}")
        elif roll < 0.75:
            parts.append("{{ range $i, $v := " + _tpl_operand(rng, 1) + " }}{{ $i }}={{ $v }}{{ end }}")
        else:
            parts.append(rng.choice(["text ", "\n", "é", "\x1b[2J", "<b>"]))
    return "".join(parts)


TEMPLATE_FIXED = [
    '{{ define "t" }}{{ template "t" . }}{{ end }}{{ template "t" . }}',
    '{{ define "t" }}{{ template "t" . }}{{ template "t" . }}{{ end }}{{ template "t" . }}',
    '{{ regexMatch "^(a+)+$" "' + "a" * 40 + 'b" }}',
    '{{ regexFind "(x+x+)+y" "' + "x" * 40 + '" }}',
    "{{ until 1000000000 }}", '{{ printf "%0999999999d" 1 }}', '{{ repeat 1000000000 "x" }}',
    "{{ range until 100000000 }}x{{ end }}", "{{ " * 5000 + "}}" * 5000,
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "{{ if 1 }}" * 3000 + "{{ end }}" * 3000,
    "{{ 999999999999999999999999999999 }}", "{{ add 9223372036854775807 1 }}",
    '{{ "x" | repeat 100000 | repeat 100000 }}', '{{ fromJson "' + "[" * 5000 + '" }}',
    "{{ env \"HOME\" }}", "{{ expandenv \"$HOME\" }}", '{{ readFile "/etc/passwd" }}',
    "{{ seq 1 100000000 }}", '{{ untilStep 0 1000000000 1 }}',
    '{{ printf "%*d" 999999999 1 }}', '{{ indent 999999999 "x" }}', '{{ trunc -1 "abc" }}',
    '{{ substr 5 1 "abc" }}', '{{ toDate "2006" "99999" }}', '{{ date "2006" 1e300 }}',
]


@cache
def _template_seeds() -> list[str]:
    root = REPO / "src" / "canarist" / "templates"
    seeds = [p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.tpl"))]
    seeds += [p.read_text(encoding="utf-8") for p in
              sorted((REPO / "tests" / "core" / "gotemplate" / "fixtures").glob("*.tpl"))]
    return seeds


def template(rng: random.Random, count: int) -> list[str]:
    return _mixed(rng, count, template_grammar, _template_seeds(), _TPL_TOKENS, TEMPLATE_FIXED)


# -- jq --------------------------------------------------------------------------------------

_JQ_ATOMS = [".", ".data", ".data.result", ".data.result[0]", ".data.result[0].value[1]",
             ".data.result[]", ".metric.le", "1", "null", "\"x\"", "nan", "infinite", "$__loc__",
             "[]", "{}", "..", "input", "inputs", "now", "env", "$ENV", "@base64d", "9" * 400,
             "1e309", "-1e309"]
_JQ_FILTERS = ["tonumber", "tostring", "length", "keys", "add", "first", "last", "reverse",
               "sort", "unique", "floor", "sqrt", "log", "not", "type", "tojson", "fromjson",
               "ascii_downcase", "explode", "implode", "splits(\"a\")", "test(\"(a+)+$\")",
               "ltrimstr(\"x\")", "map(.)", "select(. != null)", "recurse", "paths",
               "to_entries", "getpath([\"a\"])", "error", "error(\"boom\")", "halt",
               "halt_error", "debug", "stderr", "input_line_number", "limit(3; .[])",
               "range(5)", "@text", "@json", "@csv", "@html", "@uri", "@sh", "ltrimstr(1)",
               "tonumber * 1000", "if . == \"+Inf\" then . else tonumber end", "splits(\"(\")"]
_JQ_TOKENS = ["|", ",", "(", ")", "[", "]", "{", "}", ".", "..", "//", "?", "as $x |", "$x",
              "def f: .;", "reduce", "foreach", "try", "catch", "if", "then", "else", "end",
              "\"", "\\(", "@", ";", "and", "or", "not", "==", "+", "-", "*", "/", "%"]


def jq_grammar(rng: random.Random) -> str:
    parts = [rng.choice(_JQ_ATOMS)]
    for _ in range(rng.randint(0, 4)):
        parts.append(rng.choice(_JQ_FILTERS))
    expr = " | ".join(parts)
    roll = rng.random()
    if roll < 0.1:
        expr = f"[{expr}]"
    elif roll < 0.2:
        expr = f"try ({expr}) catch ."
    elif roll < 0.25:
        expr = "reduce .data.result[] as $r (0; . + ($r.value[1] | tonumber))"
    return expr


JQ_SEEDS = [".data.result[0].value[1] | tonumber",
            '[.data.result[] | [(.metric.le | if . == "+Inf" then . else tonumber * 1000 end), '
            ".value[1]]]", ".data.result | length", ".data.result[0].value[1]",
            "[.data.result[].value[1] | tonumber] | add"]
JQ_FIXED = [
    "def f: f; f", "def f: 1 + f; f", "repeat(1) | select(false)", "[range(1e8)]",
    "until(false; .)", "$ENV", "env", "$ENV | tostring", "env.HOME", "input", "inputs",
    '"x" | test("^(a+)+$")', '"' + "a" * 30 + 'b" | test("^(a+)+$")', "[limit(1e9; repeat(1))] | length",
    "[range(1e7)] | length", "1e1000", "-1e1000", "nan", "[nan] | sort", "infinite",
    "@base64d", '"\\u0000"', "halt_error", "halt_error(1)", "input_filename", "$__prog_args",
    "getpath([\"a\",0,\"b\"])", "limit(0; 1)", "splits(\"(\")", "ltrimstr(1)",
    "[.[]?]" * 200, "(" * 5000 + "." + ")" * 5000, "[" * 3000 + "]" * 3000,
    "def f(x): x | f(x); f(.)", "path(..)", "tojson * 100000",
]


def jq(rng: random.Random, count: int) -> list[str]:
    return _mixed(rng, count, jq_grammar, JQ_SEEDS, _JQ_TOKENS, JQ_FIXED)


# -- durations -------------------------------------------------------------------------------

_UNITS = ["ns", "us", "µs", "μs", "ms", "s", "m", "h", "d", "", "S", "H", "sec", "y"]
_DURATION_TOKENS = ["-", "+", ".", "e", "E", "0", "9", " ", "_", *_UNITS]


def duration_grammar(rng: random.Random) -> str:
    sign = rng.choice(["", "", "", "-", "+"])
    parts = []
    for _ in range(rng.randint(1, 4)):
        whole = rng.choice(["0", "1", "5", "10", "90", "999", "9223372036854775807",
                            "9223372036854775808", "9" * rng.choice([20, 400]), ""])
        frac = rng.choice(["", "", ".", ".5", ".000000001", "." + "9" * 30])
        parts.append(whole + frac + rng.choice(_UNITS))
    return sign + "".join(parts)


DURATION_SEEDS = ["5s", "1m30s", "1h", "250ms", "1.5h", "0", "-1.5h", "2h45m", "300us", "1ns"]
DURATION_FIXED = ["9" * 100000 + "s", "1" + "0" * 4400 + "s", "0." + "0" * 100000 + "1s",
                  "2562047h47m16.854775807s", "2562047h47m16.854775808s", "-2562047h47m16.854775808s",
                  ".s", "1.s", ".1s", "1e3s", "\x00s", "1\u202es", "１s", "1s" * 50000]


def duration(rng: random.Random, count: int) -> list[str]:
    return _mixed(rng, count, duration_grammar, DURATION_SEEDS, _DURATION_TOKENS, DURATION_FIXED)


# -- cron ------------------------------------------------------------------------------------

_CRON_FIELD = ["*", "0", "59", "60", "*/1", "*/0", "*/99999999999", "1-5", "5-1", "59-0",
               "1,2,3", "L", "1W", "1#2", "?", "MON", "mon-fri", "JAN", "H", "-1", "1-",
               ",", "9" * 40, "0-59/2", "*/", "a"]
_CRON_TOKENS = ["*", "/", "-", ",", " ", "\t", "@", "L", "W", "#", "?", "0", "9"]


def cron_grammar(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually",
                           "@midnight", "@reboot", "@every 1m", "@every", "@", "@HOURLY"])
    fields = [rng.choice(_CRON_FIELD) for _ in range(rng.choice([4, 5, 5, 5, 6, 7]))]
    return rng.choice([" ", "  ", "\t"]).join(fields)


CRON_SEEDS = ["*/1 * * * *", "0 0 * * *", "*/10 * * * * *", "@hourly", "0 12 1 1 MON",
              "15,45 */2 1-15 * 1-5"]
CRON_FIXED = ["0 0 L * *", "0 0 1W * *", "0 0 * * 1#2", "59-0 * * * *", "*/99999999999 * * * *",
              "@every 1m", "* * * * * * *", " ".join(["*"] * 5000), "*/1 * * * *\n* * * * *",
              "* * * * *" + " " * 100000, "1-" + "9" * 4400 + " * * * *"]


def cron(rng: random.Random, count: int) -> list[str]:
    return _mixed(rng, count, cron_grammar, CRON_SEEDS, _CRON_TOKENS, CRON_FIXED)


# -- kubeconfig ------------------------------------------------------------------------------

_KUBE_STRINGS = ["https://127.0.0.1:6443", "http://127.0.0.1:1", "https://[::1]:6443",
                 "https://127.0.0.1:99999", "https://a..b", "https://" + "a" * 70 + ".io",
                 "socks5://p:1", "https://k/prefix/", "k8s:6443", "", " ", "~nobody-here/x",
                 "~/x", "../../../../etc/passwd", "/dev/zero", "/", "ca.crt", "a\x00b",
                 "\u202e", "é", "%%%", "Zm9v", "LS0tLS1CRUdJTg==", "x" * 5000, "Bearer a b",
                 "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1",
                 "Always", "Never", "oidc", "true", "kube.internal", "-" * 64]
_KUBE_USER_KEYS = ["token", "tokenFile", "client-certificate", "client-key",
                   "client-certificate-data", "client-key-data", "username", "password",
                   "exec", "auth-provider", "as"]
_KUBE_CLUSTER_KEYS = ["server", "certificate-authority", "certificate-authority-data",
                      "insecure-skip-tls-verify", "tls-server-name", "proxy-url", "extensions"]


def _kube_value(rng: random.Random, depth: int = 0) -> object:
    if depth < 2 and rng.random() < 0.15:
        if rng.random() < 0.5:
            return [_kube_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(["name", "value", "command", "args", "env", "apiVersion",
                            "interactiveMode", "installHint", "provideClusterInfo"]):
                _kube_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return rng.choice([*_KUBE_STRINGS, 0, -1, 1.5, True, False, None, [], {}])


def _kube_entries(rng: random.Random, inner: str, keys: list[str]) -> object:
    if rng.random() < 0.05:
        return _kube_value(rng)
    entries = []
    for _ in range(rng.randint(0, 3)):
        body = {rng.choice(keys): _kube_value(rng) for _ in range(rng.randint(0, 5))}
        own = {"cluster": "c", "user": "u", "context": "x"}[inner]
        name = own if rng.random() < 0.8 else rng.choice(["c", "u", "x", "", 5, None])
        entry: dict[str, object] = {"name": name,
                                    inner: body if rng.random() < 0.95 else _kube_value(rng)}
        entries.append(entry)
    return entries


def kubeconfig_grammar(rng: random.Random) -> str:
    data: dict[str, object] = {
        "clusters": _kube_entries(rng, "cluster", _KUBE_CLUSTER_KEYS),
        "users": _kube_entries(rng, "user", _KUBE_USER_KEYS),
        "contexts": _kube_entries(rng, "context", ["cluster", "user", "namespace"]),
        "current-context": "x" if rng.random() < 0.8 else rng.choice(["c", "", None, 5, ["x"]]),
    }
    if rng.random() < 0.5:  # a context that points at what exists
        data["contexts"] = [{"name": "x", "context": {"cluster": "c", "user": "u",
                                                      "namespace": rng.choice(_KUBE_STRINGS)}}]
    return _yaml_dump(data)


KUBECONFIG_SEEDS = [
    "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443', "
    "certificate-authority-data: LS0tLS1CRUdJTg==}\nusers:\n- name: u\n  user: {token: abc}\n"
    "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: ns}\ncurrent-context: x\n",
    "clusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1', insecure-skip-tls-verify: "
    "true, tls-server-name: kube.internal, proxy-url: 'http://127.0.0.1:3128'}\nusers:\n- name: u\n"
    "  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: "
    "/bin/false\n      args: [a]\n      env: [{name: A, value: b}]\n      interactiveMode: Never\n"
    "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    "clusters:\n- name: c\n  cluster: {server: 'https://k:6443', certificate-authority: ca.crt}\n"
    "users:\n- name: u\n  user: {client-certificate: c.crt, client-key: c.key, tokenFile: t}\n"
    "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
]
KUBECONFIG_FIXED = [alias_bomb(9), deep(1000, flow=True), "", "- a\n", "clusters: 5\n",
                    "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
                    "clusters: [{name: c, cluster: {server: 'https://k', certificate-authority: "
                    "'/dev/zero'}}]\n"]


def kubeconfig(rng: random.Random, count: int) -> list[str]:
    return _yaml_files(rng, count, KUBECONFIG_SEEDS, kubeconfig_grammar, KUBECONFIG_FIXED)


GENERATORS: dict[str, Callable[[random.Random, int], list[str]]] = {
    "strvals": strvals, "values": values, "experiment": experiment, "template": template,
    "jq": jq, "duration": duration, "cron": cron, "kubeconfig": kubeconfig,
}


def generate(parser: str, seed: int, count: int) -> list[str]:
    return GENERATORS[parser](random.Random(f"{parser}:{seed}"), count)
