"""``surgiplan pacs config|echo|find|get|send``: hospital PACS connectivity from the command line.

Nothing connects anywhere until a server is configured (``pacs config add``). Passwords are
never taken on the command line (``--password-env VAR`` or a prompt) and never printed.
Exit codes: 0 success; 2 bad input or a network failure (one line naming the server).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

PROTOCOLS = ("auto", "dimse", "dicomweb")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pacs", help="query, retrieve from and send to a PACS (DIMSE or "
                              "DICOMweb)", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    _register_config(sub)
    e = sub.add_parser("echo", help="test the connection (C-ECHO, or a QIDO-RS search)")
    _common(e)
    e.set_defaults(func=run_echo)
    f = sub.add_parser("find", help="search studies; prints patient -> study -> series")
    _common(f)
    f.add_argument("--patient-name", default="", help="DICOM wildcards * and ? allowed")
    f.add_argument("--patient-id", default="")
    f.add_argument("--date-from", default="", metavar="YYYYMMDD")
    f.add_argument("--date-to", default="", metavar="YYYYMMDD")
    f.add_argument("--modality", default="", help="e.g. CT, MR")
    f.add_argument("--accession", default="")
    f.set_defaults(func=run_find)
    g = sub.add_parser("get", help="retrieve a series into the local database (checked)")
    _common(g)
    g.add_argument("study_uid")
    g.add_argument("series_uid")
    g.add_argument("--method", choices=("get", "move", "wado"), default=None,
                   help="C-GET (default with DIMSE), C-MOVE to our listener, or WADO-RS")
    g.add_argument("--db", type=Path, help="database folder (default: the user's)")
    g.set_defaults(func=run_get)
    s = sub.add_parser("send", help="send the case's DICOM SEG and/or a report PDF into the "
                       "original study")
    _common(s)
    s.add_argument("case", type=Path, help="case bundle built with --include-identifiers")
    s.add_argument("--seg", action="store_true", help="send the twin's structures as DICOM SEG")
    s.add_argument("--pdf", type=Path, help="send this report (from 'surgiplan report') as "
                   "Encapsulated PDF")
    s.add_argument("--include-identifiers", action="store_true",
                   help="required: the objects carry the patient's identity (logged)")
    s.set_defaults(func=run_send)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="NAME", help="configured server (default: the default)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="auto",
                   help="auto: DIMSE when configured, else DICOMweb")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _register_config(sub) -> None:
    c = sub.add_parser("config", help="show or change the PACS settings")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", help="print the settings (passwords never shown)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_config_show)
    add = csub.add_parser("add", help="add or replace a server")
    add.add_argument("name")
    add.add_argument("--ae", default="", help="the server's AE title")
    add.add_argument("--host", default="")
    add.add_argument("--port", type=int, default=104)
    add.add_argument("--tls", action="store_true", help="DICOM over TLS")
    add.add_argument("--ca", default="", help="CA bundle (PEM) that verifies the server")
    add.add_argument("--cert", default="", help="our client certificate (PEM)")
    add.add_argument("--key", default="", help="our client key (PEM)")
    add.add_argument("--dicomweb", default="", metavar="URL", help="DICOMweb base URL")
    add.add_argument("--user", default="", help="DICOMweb user")
    add.add_argument("--password-env", metavar="VAR",
                     help="read the DICOMweb password from this environment variable")
    add.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    add.add_argument("--default", action="store_true", help="make it the default server")
    add.set_defaults(func=run_config_add)
    rm = csub.add_parser("remove", help="forget a server")
    rm.add_argument("name")
    rm.set_defaults(func=run_config_remove)
    st = csub.add_parser("set", help="our AE title, C-MOVE listener and default server")
    st.add_argument("--calling-ae", help="SurgiPlan's AE title (the PACS must know it)")
    st.add_argument("--listener-port", type=int, help="port of our C-MOVE listener")
    st.add_argument("--listener-host", help="address the listener binds (default all)")
    st.add_argument("--default", metavar="NAME", help="default server")
    st.set_defaults(func=run_config_set)


def _print(args: argparse.Namespace, data, text: str) -> None:
    print(json.dumps(data, indent=1) if args.json else text)


def _valid(build):
    from pydantic import ValidationError

    from surgiplan.errors import BadInputError
    from surgiplan.net.settings import settings_path

    try:
        return build()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadInputError(f"invalid PACS setting {'.'.join(map(str, first['loc']))}: "
                            f"{first['msg']}", path=settings_path(),
                            action="Fix the value and run the command again") from None


# ------------------------------------------------------------------------ config
def run_config_show(args: argparse.Namespace) -> int:
    from surgiplan.net.settings import load_settings, settings_path

    data = load_settings().describe()
    lines = [f"settings: {settings_path()}", f"our AE title: {data['calling_ae_title']}, "
             f"C-MOVE listener {data['listener_host']}:{data['listener_port']}"]
    for s in data["servers"]:
        dimse = f"{s['ae_title']}@{s['host']}:{s['port']}{' TLS' if s['tls'] else ''}" \
            if s["ae_title"] else "-"
        web = s["dicomweb_url"] or "-"
        mark = " (default)" if s["name"] == data["default_server"] else ""
        lines.append(f"  {s['name']}{mark}: DIMSE {dimse}; DICOMweb {web}")
    if not data["servers"]:
        lines.append("  no server configured: SurgiPlan does not connect anywhere")
    _print(args, data, "\n".join(lines))
    return 0


def _password(args: argparse.Namespace) -> str:
    from surgiplan.errors import BadInputError

    if args.password_env:
        if args.password_env not in os.environ:
            raise BadInputError(f"environment variable {args.password_env} is not set",
                                path="--password-env", action="Export it, then run again")
        return os.environ[args.password_env]
    if args.user and os.isatty(0):
        import getpass

        return getpass.getpass(f"DICOMweb password for {args.user}: ")
    return ""


def run_config_add(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from surgiplan.errors import BadInputError
    from surgiplan.net.settings import ServerSettings, load_settings, save_settings

    if not (args.ae and args.host) and not args.dicomweb:
        raise BadInputError("a server needs --ae, --host and --port (DIMSE) and/or --dicomweb",
                            path=args.name, action="Give the server's addresses")
    settings = load_settings()
    server = _valid(lambda: ServerSettings(
        name=args.name, ae_title=args.ae, host=args.host, port=args.port, tls=args.tls,
        tls_ca_file=args.ca, tls_cert_file=args.cert, tls_key_file=args.key,
        dicomweb_url=args.dicomweb, dicomweb_user=args.user,
        dicomweb_password=SecretStr(_password(args)), timeout_s=args.timeout))
    settings.servers[args.name] = server
    if args.default or not settings.default_server:
        settings.default_server = args.name
    path = save_settings(settings)
    print(f"server {args.name!r} saved in {path}")
    return 0


def run_config_remove(args: argparse.Namespace) -> int:
    from surgiplan.errors import BadInputError
    from surgiplan.net.settings import load_settings, save_settings, settings_path

    settings = load_settings()
    if settings.servers.pop(args.name, None) is None:
        raise BadInputError(f"no server named {args.name!r}", path=settings_path(),
                            action="See 'surgiplan pacs config show'")
    if settings.default_server == args.name:
        settings.default_server = next(iter(settings.servers), "")
    save_settings(settings)
    print(f"server {args.name!r} removed")
    return 0


def run_config_set(args: argparse.Namespace) -> int:
    from surgiplan.net.settings import PacsSettings, load_settings, save_settings

    data = load_settings().model_dump()
    for key, value in (("calling_ae_title", args.calling_ae),
                       ("listener_port", args.listener_port),
                       ("listener_host", args.listener_host), ("default_server", args.default)):
        if value is not None:
            data[key] = value
    settings = _valid(lambda: PacsSettings.model_validate(data))
    if args.default is not None:
        settings.server(args.default)  # refuses an unknown name
    print(f"settings saved in {save_settings(settings)}")
    return 0


# ------------------------------------------------------------------------ network
def _server(args: argparse.Namespace):
    from surgiplan.net.settings import load_settings

    settings = load_settings()
    return settings, settings.server(args.server)


def _use_dicomweb(args: argparse.Namespace, server) -> bool:
    return args.protocol == "dicomweb" or (args.protocol == "auto" and not server.has_dimse)


def run_echo(args: argparse.Namespace) -> int:
    import time

    from surgiplan.net import dicomweb, dimse

    settings, server = _server(args)
    start = time.perf_counter()
    web = _use_dicomweb(args, server)
    dicomweb.echo(server) if web else dimse.echo(settings, server)
    seconds = time.perf_counter() - start
    what = "QIDO-RS" if web else "C-ECHO"
    _print(args, {"server": server.name, "service": what, "ok": True, "seconds": seconds},
           f"{server.name}: {what} ok ({seconds * 1000:.0f} ms)")
    return 0


def _tree_text(tree: list[dict]) -> str:
    lines = []
    for p in tree:
        lines.append(f"{p['patient_name'] or '(no name)'}  [{p['patient_id']}]")
        for st in p["studies"]:
            lines.append(f"  study {st['study_date']} {st['description']}  acc "
                         f"{st['accession'] or '-'}  {st['study_uid']}")
            for se in st["series"]:
                n = se["instances"] if se["instances"] is not None else "?"
                lines.append(f"    series {se['series_number']} {se['modality']} "
                             f"{se['description']} ({n} files)  {se['series_uid']}")
    return "\n".join(lines) or "no study matches"


def run_find(args: argparse.Namespace) -> int:
    from surgiplan.net.query import Query, search

    settings, server = _server(args)
    query = Query(args.patient_name, args.patient_id, args.date_from, args.date_to,
                  args.modality, args.accession)
    protocol = "dicomweb" if _use_dicomweb(args, server) else "dimse"
    tree = search(settings, server, query, protocol=protocol)
    _print(args, {"server": server.name, "patients": tree}, _tree_text(tree))
    return 0


def run_get(args: argparse.Namespace) -> int:
    import sys

    from surgiplan.db.database import LocalDatabase
    from surgiplan.net.retrieve import retrieve_series

    settings, server = _server(args)
    method = args.method or ("wado" if _use_dicomweb(args, server) else "get")

    def progress(fraction: float, text: str) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{fraction * 100:5.1f} % {text:40s}", end="", file=sys.stderr)

    with LocalDatabase(args.db) as db:
        summary = retrieve_series(settings, server, db, args.study_uid, args.series_uid,
                                  method=method, progress=progress)
        folder = db.series_files(args.series_uid)[0].parent
    data = {"server": server.name, "method": method, "folder": str(folder),
            **summary.to_json()}
    warn = [f"  warning: {w}" for ws in summary.warnings.values() for w in ws]
    _print(args, data, "\n".join([f"{summary.added} new, {summary.already} already in the "
                                  f"local database: {folder}", *warn]))
    return 0


def run_send(args: argparse.Namespace) -> int:
    from surgiplan.io.case_files import bundle_path
    from surgiplan.net.send import send_results

    settings, server = _server(args)
    protocol = "dicomweb" if _use_dicomweb(args, server) else "dimse"
    sent = send_results(settings, server, bundle_path(args.case), seg=args.seg, pdf=args.pdf,
                        include_identifiers=args.include_identifiers, protocol=protocol)
    _print(args, {"server": server.name, "sent": [s.to_json() for s in sent]},
           "\n".join(f"{s.kind}: stored {s.sop_instance_uid} in study {s.study_uid}"
                     for s in sent))
    return 0
