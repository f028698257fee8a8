"""az's output formats and --query: json, table, tsv, none, and JMESPath applied before formatting."""

from __future__ import annotations


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_table_has_azs_columns(cli, group, gallery):
    cli.ok("sig", "create", "-g", group, "-r", "second", "--description", "two")
    table = lines(cli.ok("sig", "list", "-g", group, "-o", "table").stdout)
    assert table[0].split() == ["Name", "ResourceGroup", "Location", "ProvisioningState", "UniqueName", "Description"]
    assert set(table[1]) == {"-", " "}
    rows = sorted(r.split() for r in table[2:])
    assert [r[:4] for r in rows] == sorted(
        [[gallery, group, "eastus", "Succeeded"], ["second", group, "eastus", "Succeeded"]]
    )
    assert rows[[r[0] for r in rows].index("second")][-1] == "two"

    groups = lines(cli.ok("group", "list", "--output", "table").stdout)
    assert groups[0].split() == ["Name", "Location", "Status"] and groups[2].split() == [group, "eastus", "Succeeded"]


def test_table_columns_line_up(cli, group, gallery):
    cli.ok(
        "sig",
        "image-definition",
        "create",
        "-g",
        group,
        "-r",
        gallery,
        "-i",
        "a-much-longer-name",
        "-p",
        "p",
        "-f",
        "f",
        "-s",
        "s",
        "--os-type",
        "Windows",
    )
    table = lines(cli.ok("sig", "image-definition", "list", "-g", group, "-r", gallery, "-o", "table").stdout)
    assert table[0].index("ResourceGroup") == table[2].index(group) == len("a-much-longer-name") + 2
    assert table[2].split()[4:] == ["Windows", "Generalized", "V2", "p", "f", "s"]


def test_tsv_is_one_line_of_sorted_scalar_values_per_item(cli, group, gallery):
    tsv = cli.ok("sig", "show", "-g", group, "-r", gallery, "-o", "tsv").stdout
    fields = lines(tsv)[0].split("\t")
    shown = cli.json("sig", "show", "-g", group, "-r", gallery)
    expected = ["" if isinstance(v, dict) else str(v) for _, v in sorted(shown.items())]
    assert fields == expected

    cli.ok("sig", "create", "-g", group, "-r", "other")
    names = cli.ok("sig", "list", "-g", group, "--query", "[].name", "-o", "tsv").stdout
    assert sorted(lines(names)) == sorted([gallery, "other"])


def test_query_runs_before_formatting(cli, group, gallery):
    assert cli.json("sig", "show", "-g", group, "-r", gallery, "--query", "{n: name, state: provisioningState}") == {
        "n": gallery,
        "state": "Succeeded",
    }
    assert cli.ok("sig", "show", "-g", group, "-r", gallery, "--query", "location", "-o", "tsv").stdout == "eastus\n"
    table = lines(
        cli.ok("sig", "list", "-g", group, "--query", "[].{Gallery: name, Where: location}", "-o", "table").stdout
    )
    assert table[0].split() == ["Gallery", "Where"] and table[2].split() == [gallery, "eastus"]
    assert cli.json("group", "list", "--query", f"[?name=='{group}'].properties.provisioningState") == ["Succeeded"]


def test_a_bad_query_is_an_error(cli, group):
    result = cli.fails("group", "show", "-n", group, "--query", "[?name==")
    assert "--query" in result.stderr and result.stdout == ""


def test_output_none_prints_nothing(cli, group):
    assert cli.ok("sig", "create", "-g", group, "-r", "quiet", "-o", "none").stdout == ""
    assert cli.json("sig", "show", "-g", group, "-r", "quiet")["provisioningState"] == "Succeeded"
