"""Show a plan: terraform-like text for people, JSON for machines."""
from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape

from .diff import CREATE, DELETE, UPDATE, Plan
from .state import RowSet

SYMBOL = {CREATE: ("+", "green"), UPDATE: ("~", "yellow"), DELETE: ("-", "red")}
LONG_TEXT = 80


def _value(field: str, value, sensitive: bool) -> str:
    if value is None:
        return "null"
    if sensitive:
        return "(sensitive)"
    if isinstance(value, RowSet):
        return f"{value.count} rows"
    if isinstance(value, str) and (len(value) > LONG_TEXT or "\n" in value):
        return f"({len(value.encode())} bytes)"
    return json.dumps(value, ensure_ascii=False)


def render_text(plan: Plan, console: Console, *, title: str | None = None) -> None:
    if title:
        console.print(title, style="bold")
    if not plan.changes:
        console.print("No changes. The store matches the config.")
    for change in plan.changes:
        sym, color = SYMBOL[change.action]
        console.print(f"  [{color}]{sym} {escape(change.ref)}[/]")
        width = max([len(f.field) for f in change.fields] + [0])
        for f in change.fields:
            name = f.field.ljust(width)
            if change.action == CREATE:
                console.print(f"      {escape(name)} = {escape(_value(f.field, f.new, f.sensitive))}")
            elif change.action == DELETE:
                continue
            else:
                old, new = _value(f.field, f.old, f.sensitive), _value(f.field, f.new, f.sensitive)
                if old == new:  # same size or both masked: still say it changed
                    new += " (changed)"
                console.print(f"      {escape(name)}   {escape(old)} -> {escape(new)}")
        for note in change.notes:
            console.print(f"      [dim]# {escape(note)}[/]")
    for warning in plan.warnings:
        console.print(f"[yellow]{escape(warning)}[/]")
    for refusal in plan.refusals:
        console.print(f"[bold red]{escape(refusal)}[/]")
    s = plan.summary()
    console.print(f"\nPlan: {s[CREATE]} to create, {s[UPDATE]} to update, {s[DELETE]} to delete.", style="bold")


def to_json(plan: Plan) -> dict:
    def plain(value, sensitive):
        if sensitive and value is not None:
            return "(sensitive)"
        if isinstance(value, RowSet):
            return {"rows": value.count, "digest": value.digest}
        return value

    return {
        "account": plan.account,
        "changes": [{
            "action": c.action, "kind": c.kind, "key": c.key,
            "fields": {f.field: {"old": plain(f.old, f.sensitive), "new": plain(f.new, f.sensitive)} for f in c.fields},
            "notes": c.notes,
        } for c in plan.changes],
        "summary": plan.summary(),
        "refusals": plan.refusals,
        "warnings": plan.warnings,
    }


DNS_SYMBOL = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"), "replace": ("-/+", "yellow")}


def _dns_values(values) -> str:
    return ", ".join(values) if values else "nothing"


def render_dns_text(steps: list[dict], refusals: list[str], warnings: list[str], console: Console) -> None:
    """The DNS part of a plan: one line per changed record set, then its old and new values (a
    drift shows what live DNS holds now and what apply puts back), warnings, refusals."""
    console.print(f"DNS plan ({len(steps)} record set{'s' * (len(steps) != 1)} to change)", style="bold")
    if not steps:
        console.print("  No DNS changes. Live DNS matches the config.")
    for st in steps:
        sym, color = DNS_SYMBOL.get(st["op"], ("~", "yellow"))
        diffs = f"  ({', '.join(st['diffs'])})" if st.get("diffs") else ""
        console.print(f"  [{color}]{sym} dns {escape(st['name'])}[/]{escape(diffs)}")
        if st["op"] == "create" and st.get("new") is not None:
            console.print(f"      value = {escape(_dns_values(st['new']))}")
        elif st.get("new") is not None:
            console.print(f"      value   {escape(_dns_values(st.get('old')))} -> {escape(_dns_values(st['new']))}")
    for warning in warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/]")
    for refusal in refusals:
        console.print(f"[bold red]refused: {escape(refusal)}[/]")


MD_SYMBOL = {CREATE: "+", UPDATE: "~", DELETE: "-", "replace": "-/+"}


def _cell(text) -> str:
    """A markdown table cell: pipes escaped, newlines as <br>, code spans for values."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")
    return s.replace("`", "'")


def _md_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict) and "rows" in value and "digest" in value:
        return f"{value['rows']} rows"
    if isinstance(value, str) and (len(value) > LONG_TEXT or "\n" in value):
        return f"({len(value.encode())} bytes)"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "<br>".join(f"`{_cell(v)}`" for v in value) or "—"
    return f"`{_cell(json.dumps(value, ensure_ascii=False))}`"


def render_markdown(doc: dict) -> str:
    """The plan (as to_json gives it, with its "dns" part when DNS was planned) as a pull-request
    comment: a summary line, a table of changes per kind, each change with its fields, the DNS
    record sets with old -> new, refusals and warnings."""
    s, dns = doc["summary"], doc.get("dns")
    n_dns = len(dns["steps"]) if dns else 0
    lines = [f"### mailcore plan: account `{_cell(doc['account'])}`", ""]
    status = ("**Refused**: apply would change nothing until the refusals below are fixed." if doc["refusals"] else
              "**No changes.** The store and DNS match the config." if not (doc["changes"] or n_dns) else
              "**Changes**: merging applies them.")
    dns_part = (f"; DNS: {n_dns} record set{'s' * (n_dns != 1)} to change" if dns else "; DNS not planned (--no-dns)")
    lines += [f"{status} Store: {s[CREATE]} to create, {s[UPDATE]} to update, {s[DELETE]} to delete{dns_part}.", ""]
    if doc["changes"]:
        per_kind: dict[str, dict[str, int]] = {}
        for c in doc["changes"]:
            per_kind.setdefault(c["kind"], {CREATE: 0, UPDATE: 0, DELETE: 0})[c["action"]] += 1
        lines += ["| Kind | Create | Update | Delete |", "|---|---:|---:|---:|"]
        lines += [f"| {_cell(k)} | {v[CREATE]} | {v[UPDATE]} | {v[DELETE]} |" for k, v in per_kind.items()]
        n = len(doc["changes"])
        lines += ["", f"<details><summary>{n} change{'s' * (n != 1)} in the store, field by field</summary>", "",
                  "| | Kind | Key | Field | Old | New |", "|---|---|---|---|---|---|"]
        for c in doc["changes"]:
            sym = MD_SYMBOL.get(c["action"], "~")
            fields = c["fields"] if c["action"] != DELETE else {}
            if not fields:
                lines.append(f"| {sym} | {_cell(c['kind'])} | `{_cell(c['key'])}` | | | |")
            for i, (name, f) in enumerate(fields.items()):
                head = f"| {sym} | {_cell(c['kind'])} | `{_cell(c['key'])}` " if i == 0 else "| | | "
                old = "" if c["action"] == CREATE else _md_value(f["old"])
                lines.append(f"{head}| {_cell(name)} | {old} | {_md_value(f['new'])} |")
        lines += ["", "</details>", ""]
    if dns and dns["steps"]:
        lines += ["#### DNS changes", "", "| | Record set | Old | New |", "|---|---|---|---|"]
        for st in dns["steps"]:
            old = "" if st["op"] == "create" else _md_value(st.get("old"))
            new = "" if st["op"] == "delete" else _md_value(st.get("new"))
            lines.append(f"| {MD_SYMBOL.get(st['op'], '~')} | `{_cell(st['name'])}` | {old} | {new} |")
        lines.append("")
    for title, items in (("Refusals", doc["refusals"]), ("Warnings", doc["warnings"] + (dns["warnings"] if dns else []))):
        if items:
            lines += [f"#### {title}", ""] + [f"- {_cell(x)}" for x in items] + [""]
    return "\n".join(lines)
