"""xbuild.schema, the one checker of every data file: the line of the offending key (tables, arrays
of tables, multi-line arrays, dotted and quoted keys, inline tables), what the value must be, unknown
keys with a did-you-mean, missing keys and tables, rules across keys; and nightly.toml, whose only
loader is xbuild.service.nightly.load. Every case is a real file in tmp_path."""

import pytest

from tests.unit.test_cli import REPO, assert_user_error, xbuild
from xbuild import schema
from xbuild.errors import ConfigError
from xbuild.request import BuildRequest
from xbuild.service import nightly


def _even(table: dict) -> None:
    if "pairs" in table and table.get("count", 0) % 2:
        raise schema.Invalid("count", "must be even when 'pairs' is set")


ITEM = schema.Table({"name": schema.text("a name", r"[a-z]+", required=True),
                     "tags": schema.List(schema.text())})
SAMPLE = schema.Table({
    "title": schema.text(required=True),
    "count": schema.integer(1, 10, "a count from 1 to 10"),
    "pairs": schema.BOOL,
    "kind": schema.one_of(("big", "small")),
    "colors": schema.Names(schema.text("a color", r"[a-z]+"), schema.integer(0, 255, "a level from 0 to 255")),
    "item": schema.Tables(ITEM),
    "deep": schema.Table({"inner": schema.Table({"size": schema.integer(1, 3, "a size from 1 to 3")})}),
}, rules=(_even,))


def load_error(tmp_path, text: str, node=SAMPLE) -> ConfigError:
    path = tmp_path / "sample.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as exc:
        schema.load(path, node, hint="the sample's hint")
    assert exc.value.exit_code == 6
    assert exc.value.message.startswith(f"{path}")  # the file is named first
    return exc.value


def test_a_good_file_is_returned_checked_lists_as_tuples(tmp_path):
    (tmp_path / "ok.toml").write_text('title = "t"\ncount = 4\npairs = true\n[colors]\nred = 255\n'
                                      '[[item]]\nname = "a"\ntags = ["x", "y"]\n[deep.inner]\nsize = 2\n')
    data = schema.load(tmp_path / "ok.toml", SAMPLE, hint="")
    assert data == {"title": "t", "count": 4, "pairs": True, "colors": {"red": 255},
                    "item": ({"name": "a", "tags": ("x", "y")},), "deep": {"inner": {"size": 2}}}


@pytest.mark.parametrize("text, expected", [
    # a value that is wrong, at its own line, with what it must be
    ('title = "t"\n\ncount = 11\n', "(line 3): 'count' must be a count from 1 to 10, not 11"),
    ('title = "t"\ncount = true\n', "(line 2): 'count' must be a count from 1 to 10, not True"),
    ('title = "  "\n', "(line 1): 'title' must be a non-empty string, not '  '"),
    ('title = "t"\nkind = "huge"\n', "(line 2): 'kind' must be one of 'big', 'small', not 'huge'"),
    ('title = "t"\npairs = "yes"\n', "(line 2): 'pairs' must be true or false, not 'yes'"),
    # nested tables: the key under its own header, even when the same key is written above it
    ('title = "t"\n[deep.inner]\nsize = 2\n[deep.inner2]\n', "(line 4): [deep] unknown table [deep.inner2]"),
    ('title = "t"\n[colors]\nsize = 1\n[deep.inner]\nsize = 9\n',
     "(line 5): [deep.inner] 'size' must be a size from 1 to 3, not 9"),
    ('title = "t"\ndeep.inner.size = 0\n', "(line 2): [deep.inner] 'size' must be a size from 1 to 3, not 0"),
    ('title = "t"\n"deep" . \'inner\' = { size = 0 }\n', "(line 2): [deep.inner] 'size' must be"),
    ('title = "t"\ndeep = 3\n', "(line 2): 'deep' must be a table, not 3"),
    # tables whose keys the file chooses: the key's line; an inline table: its table's line
    ('title = "t"\n[colors]\nred = 1\nBlue = 2\n', "(line 4): [colors] 'Blue' must be a color"),
    ('title = "t"\n[colors]\nred = 300\n', "(line 3): [colors] 'red' must be a level from 0 to 255, not 300"),
    ('title = "t"\ncolors = { red = 1, green = -1 }\n', "(line 2): [colors] 'green' must be a level"),
    # arrays of tables: the n-th [[item]], numbered from 1 in the message
    ('title = "t"\n[[item]]\nname = "a"\n[[item]]\nname = "b"\ntags = ["x", ""]\n',
     "(line 6): [item #2] 'tags' lists '', which is not a non-empty string"),
    ('title = "t"\n[[item]]\nname = "a"\n[[item]]\nnam = "b"\n', "(line 5): [item #2] unknown key 'nam'"),
    ('title = "t"\n[[item]]\nname = "a"\n\n[[item]]\ntags = []\n', "(line 5): [item #2] missing key 'name'"),
    ('title = "t"\nitem = [1, 2]\n', "(line 2): 'item' must be a list of tables, not [1, 2]"),
    # a multi-line array: its lines are values, never keys
    ('title = "t"\nthing = [\n  "count = 3",\n]\ncount = 0\n', "(line 2): unknown key 'thing'"),
    ('title = "t"\n[[item]]\nname = "a"\ntags = [\n  "count = 1",  # ] [ {\n  "x"]\ncount = 3\n',
     "(line 7): [item #1] unknown key 'count'"),
    # missing keys: at the table's header; at the top, no line
    ('count = 2\n', ": missing key 'title'"),
    # rules across keys point at the key they name
    ('title = "t"\npairs = true\n\ncount = 3\n', "(line 4): 'count' must be even when 'pairs' is set"),
])
def test_the_message_names_the_line_and_what_the_value_must_be(tmp_path, text, expected):
    err = load_error(tmp_path, text)
    assert expected in err.message
    assert err.hint


def test_unknown_key_says_did_you_mean_and_lists_the_keys(tmp_path):
    err = load_error(tmp_path, 'title = "t"\ncolour = 3\n')
    assert "(line 2): unknown key 'colour'" in err.message
    assert err.hint.startswith("did you mean 'colors'? known keys: colors, count, deep, item, kind, pairs, title")


def test_a_key_of_its_own_hint_beats_the_files(tmp_path):
    node = schema.Table({"n": schema.integer(1, 2, "1 or 2", hint="write n = 1")})
    assert load_error(tmp_path, "n = 3\n", node).hint == "write n = 1"
    assert load_error(tmp_path, 'title = "t"\ncount = 0\n').hint == "the sample's hint"


def test_a_missing_table(tmp_path):
    node = schema.Table({"abi": schema.Table({"bits": schema.integer(32, 64, "32 or 64", required=True)},
                                             required=True)})
    assert ": missing [abi] table" in load_error(tmp_path, "x = 1\n", schema.Table({"x": schema.BOOL,
                                                                                     **node.fields})).message
    err = load_error(tmp_path, "\n[abi]\n", node)
    assert "(line 2): [abi] missing key 'bits'" in err.message


def test_empty_lists_and_tables_where_one_entry_is_needed(tmp_path):
    node = schema.Table({"steps": schema.List(schema.text(), empty=False),
                         "loaders": schema.Names(schema.text(), schema.text(), empty=False)})
    assert "(line 1): 'steps' is an empty list" in load_error(tmp_path, "steps = []\n", node).message
    assert "(line 1): 'loaders' is an empty table" in load_error(tmp_path, "[loaders]\n", node).message


@pytest.mark.parametrize("content, expected", [
    (b'title = "t"\ncount = \n', "not valid TOML: "),
    (b'title = "caf\xe9"\n', "not UTF-8 text"),
])
def test_unreadable_files(tmp_path, content, expected):
    assert expected in load_error(tmp_path, content).message


def test_a_choice_read_from_data_is_read_when_checked(tmp_path):
    known = ["a"]
    node = schema.Table({"pick": schema.one_of(lambda: known, "a known pick")})
    known.append("b")  # e.g. the releases, loaded after the schema was written
    (tmp_path / "ok.toml").write_text('pick = "b"\n')
    assert schema.load(tmp_path / "ok.toml", node, hint="") == {"pick": "b"}
    assert "'pick' must be a known pick (a, b), not 'c'" in load_error(tmp_path, 'pick = "c"\n', node).message


# --- nightly.toml ------------------------------------------------------------------------------------

NIGHTLY = """\
schedule = "30 1 * * mon-fri"
keep = 7

[[project]]
name = "hello"
path = "hello"
targets = ["rpi3", "pi0"]

[[project]]
name = "lib"
git = "https://example.org/lib.git"
branch = "main"
targets = ["rpi4"]
os = "bullseye"
static = true
"""


def nightly_error(tmp_path, text: str) -> ConfigError:
    (tmp_path / "nightly.toml").write_text(text)
    with pytest.raises(ConfigError) as exc:
        nightly.load(str(tmp_path / "nightly.toml"))
    assert exc.value.message.startswith(f"{tmp_path / 'nightly.toml'} (line ")
    assert exc.value.hint
    return exc.value


def test_nightly_loads_into_its_dataclasses(tmp_path):
    (tmp_path / "nightly.toml").write_text(NIGHTLY)
    config = nightly.load(str(tmp_path / "nightly.toml"))
    assert (config.schedule, config.keep, config.base) == ("30 1 * * mon-fri", 7, tmp_path)
    hello, lib = config.projects
    assert hello == nightly.Project("hello", (BuildRequest("rpi3"), BuildRequest("pi0")), path="hello")
    assert hello.requests[0].os is None and hello.requests[0].static is None
    assert lib == nightly.Project("lib", (BuildRequest("rpi4", os="bullseye", static=True),),
                                  git="https://example.org/lib.git", branch="main")


def test_nightly_defaults(tmp_path):
    (tmp_path / "nightly.toml").write_text('[[project]]\nname = "a"\npath = "."\ntargets = ["rpi3"]\n')
    config = nightly.load(str(tmp_path / "nightly.toml"))
    assert (config.schedule, config.keep) == ("0 2 * * *", 14)


@pytest.mark.parametrize("old, new, expected", [
    ('schedule = "30 1 * * mon-fri"', 'schedule = "30 1 * *"',
     "(line 1): 'schedule' must be a cron schedule of five fields (UTC), such as \"0 2 * * *\", not '30 1 * *'"),
    ('schedule = "30 1 * * mon-fri"', 'schedule = "61 1 * * *"', "(line 1): 'schedule' must be a cron schedule"),
    ("keep = 7", "keep = -1", "(line 2): 'keep' must be the number of nights kept in the store"),
    ("keep = 7", 'keep = "7"', "(line 2): 'keep' must be the number of nights"),
    ('targets = ["rpi3", "pi0"]', 'targets = ["rpi3", "rpi33"]',
     "(line 7): [project #1] 'targets' lists 'rpi33', which is not a board (arm64, "),
    ('targets = ["rpi3", "pi0"]', "targets = []", "(line 7): [project #1] 'targets' is an empty list"),
    ('targets = ["rpi3", "pi0"]\n', "", "(line 4): [project #1] missing key 'targets'"),
    ('name = "hello"', 'name = "../etc"', "(line 5): [project #1] 'name' must be a project name"),
    ('path = "hello"\n', "", "(line 4): [project #1] 'path' or 'git' or 'pypi' must be given, and only one of them"),
    ('path = "hello"', 'path = "hello"\ngit = "x"', "(line 6): [project #1] 'path' or 'git' or 'pypi' must be given"),
    ('path = "hello"', 'path = "hello"\nbranch = "main"', "(line 7): [project #1] 'branch' is for a git project"),
    ('os = "bullseye"', 'os = "buster"',
     "(line 14): [project #2] 'os' is 'buster', which rpi4 does not run: its releases are bullseye, "),
    ('targets = ["rpi4"]', 'targets = ["rpi4", "riscv64"]',
     "(line 14): [project #2] 'os' is 'bullseye', which riscv64 does not run: its releases are trixie (default)"),
    ("static = true", 'static = "yes"', "(line 15): [project #2] 'static' must be true or false, not 'yes'"),
    ("static = true", "statik = true", "(line 15): [project #2] unknown key 'statik'"),
    (NIGHTLY, '[project]\nname = "a"\n', "(line 1): 'project' must be a list of tables"),
])
def test_nightly_mistakes(tmp_path, old, new, expected):
    assert old in NIGHTLY
    err = nightly_error(tmp_path, NIGHTLY.replace(old, new, 1))
    assert expected in err.message


def test_nightly_unknown_key_did_you_mean(tmp_path):
    err = nightly_error(tmp_path, NIGHTLY.replace("[[project]]", 'schedul = "x"\n[[project]]', 1))
    assert "(line 4): unknown key 'schedul'" in err.message and err.hint.startswith("did you mean 'schedule'?")


def test_nightly_run_now_with_a_broken_file_is_exit_6_not_a_traceback(tmp_path):
    (tmp_path / "nightly.toml").write_text(NIGHTLY.replace('"pi0"', '"pi9"'))
    r = xbuild("nightly", "run-now", "--config", tmp_path / "nightly.toml", cwd=REPO)
    assert_user_error(r, 6)
    assert "(line 7): [project #1] 'targets' lists 'pi9', which is not a board" in r.stderr
