"""``bolt pull|push|tag|login|logout|save|load`` and ``bolt image export``.

Argument parsing and rendering only: the work is :mod:`bolt.registry.session`'s and
:mod:`bolt.images.archive`'s, imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bolt.errors import InvalidInput, fs_errors


def register(subparsers: Any) -> None:
    pull = subparsers.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("ref", metavar="[bolt://][REGISTRY/]NAME[:TAG][@DIGEST]")
    pull.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="from a multi-platform image, this platform's (default: this machine's)",
    )
    _transfer_options(pull)
    pull.set_defaults(handler=pull_cmd)

    push = subparsers.add_parser("push", help="push an image to a registry")
    push.add_argument("source", metavar="IMAGE")
    push.add_argument(
        "dest", nargs="?", metavar="REGISTRY/NAME:TAG", help="where to (default: IMAGE's name)"
    )
    push.add_argument(
        "--chunk-size",
        type=_size,
        metavar="BYTES",
        help="upload blobs in chunks of this size (default: one request per blob)",
    )
    _transfer_options(push)
    push.set_defaults(handler=push_cmd)

    tag = subparsers.add_parser("tag", help="give an image another name")
    tag.add_argument("source", metavar="IMAGE")
    tag.add_argument("target", metavar="NAME[:TAG]")
    tag.set_defaults(handler=tag_cmd)

    login = subparsers.add_parser("login", help="store credentials for a registry")
    login.add_argument("registry", metavar="REGISTRY")
    login.add_argument("-u", "--username")
    login.add_argument("-p", "--password", help="prefer --password-stdin")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument(
        "--insecure", action="store_true", help="HTTPS without verifying, else plain HTTP"
    )
    login.set_defaults(handler=login_cmd)

    logout = subparsers.add_parser("logout", help="forget the credentials for a registry")
    logout.add_argument("registry", metavar="REGISTRY")
    logout.set_defaults(handler=logout_cmd)

    save = subparsers.add_parser("save", help="write images to a tar archive")
    save.add_argument("refs", nargs="+", metavar="IMAGE")
    save.add_argument("-o", "--output", required=True, metavar="FILE", help="'-' for stdout")
    save.add_argument(
        "--format", choices=("docker-archive", "oci-archive"), default="docker-archive"
    )
    save.set_defaults(handler=save_cmd)

    load = subparsers.add_parser("load", help="read images from a tar archive")
    load.add_argument("-i", "--input", required=True, metavar="FILE", help="'-' for stdin")
    load.add_argument("--json", action="store_true")
    load.set_defaults(handler=load_cmd)


def add_export(image_subparsers: Any) -> None:
    """``bolt image export`` (declared here, listed under ``bolt image``)."""
    export = image_subparsers.add_parser("export", help="write an image as an OCI image layout")
    export.add_argument("ref", metavar="IMAGE")
    export.add_argument(
        "dest",
        metavar="DIR[:REFNAME]",
        help="a new or existing layout; REFNAME defaults to the tag",
    )
    export.set_defaults(handler=export_cmd)


def _transfer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure", action="store_true", help="HTTPS without verifying, else plain HTTP"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    scale = units.get(text[-1:].lower(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 5242880 or 5M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the size must be positive")
    return value


# --- handlers ------------------------------------------------------------------------------


def pull_cmd(args: argparse.Namespace) -> int:
    from bolt.registry.progress import for_stream
    from bolt.registry.session import pull_image

    progress = for_stream(sys.stderr, quiet=args.quiet)
    try:
        with fs_errors(args.root):
            record = pull_image(
                args.root,
                args.ref,
                insecure=args.insecure,
                progress=progress,
                platform=args.platform,
            )
    finally:
        progress.close()
    print(f"{record.ref} {record.manifest_digest}")
    return 0


def push_cmd(args: argparse.Namespace) -> int:
    from bolt.registry.progress import for_stream
    from bolt.registry.session import push_image

    progress = for_stream(sys.stderr, quiet=args.quiet)
    try:
        with fs_errors(args.root):
            ref, digest = push_image(
                args.root,
                args.source,
                args.dest,
                insecure=args.insecure,
                progress=progress,
                chunk_size=args.chunk_size,
            )
    finally:
        progress.close()
    print(f"{ref} {digest}")
    return 0


def tag_cmd(args: argparse.Namespace) -> int:
    from bolt.images.store import ImageStore

    with fs_errors(args.root):
        record = ImageStore(args.root).tag(args.source, args.target)
    print(f"{record.ref} {record.id}")
    return 0


def login_cmd(args: argparse.Namespace) -> int:
    from bolt.registry.auth import Credentials
    from bolt.registry.session import login

    username = args.username
    if username is None:
        if not sys.stdin.isatty() or args.password_stdin:
            raise InvalidInput("no user name given", hint="use -u USER")
        username = input("Username: ").strip()
    if args.password_stdin:
        if args.password is not None:
            raise InvalidInput("give either --password or --password-stdin, not both")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        raise InvalidInput("no password given", hint="use --password-stdin")
    if not username or not password:
        raise InvalidInput("the user name and the password must not be empty")
    with fs_errors(args.root):
        login(args.root, args.registry, Credentials(username, password), insecure=args.insecure)
    print(f"Login succeeded: {args.registry}")
    return 0


def logout_cmd(args: argparse.Namespace) -> int:
    from bolt.registry.session import logout

    with fs_errors(args.root):
        removed = logout(args.root, args.registry)
    if not removed:
        raise InvalidInput(f"not logged in to {args.registry}")
    print(f"Removed the credentials for {args.registry}")
    return 0


def save_cmd(args: argparse.Namespace) -> int:
    from bolt.images.archive import save
    from bolt.images.store import ImageStore

    with fs_errors(args.root):
        store = ImageStore(args.root)
        for ref in args.refs:
            store.resolve(ref)  # every name is checked before the output is created
        if args.output == "-":
            if sys.stdout.isatty():
                raise InvalidInput(
                    "refusing to write a tar archive to a terminal", hint="use -o FILE"
                )
            save(store, args.refs, sys.stdout.buffer, args.format)
            return 0
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.partial")
        try:
            with open(tmp, "wb") as fh:
                save(store, args.refs, fh, args.format)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
    print(f"Saved {', '.join(args.refs)} to {out}")
    return 0


def load_cmd(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from bolt.images.archive import load
    from bolt.images.store import ImageStore

    with fs_errors(args.root):
        store = ImageStore(args.root)
        if args.input == "-":
            args.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=args.root, prefix=".load-") as tmp:
                shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
                tmp.flush()
                records = load(store, Path(tmp.name))
        else:
            records = load(store, Path(args.input))
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
    else:
        for record in records:
            print(f"Loaded image: {record.ref} {record.id}")
    return 0


def export_cmd(args: argparse.Namespace) -> int:
    from bolt.images.archive import export_layout
    from bolt.images.store import ImageStore

    dest, refname = args.dest, None
    head, sep, tail = dest.rpartition(":")
    if sep and head and "/" not in tail:
        dest, refname = head, tail
    with fs_errors(args.root):
        name = export_layout(ImageStore(args.root), args.ref, Path(dest), refname)
    print(f"{dest}:{name}")
    return 0
