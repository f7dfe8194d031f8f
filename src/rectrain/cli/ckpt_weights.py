"""CLI wiring for `rectrain ckpt extend-dict` and `rectrain ckpt download` (pretrained weights)."""

from __future__ import annotations

from rectrain.cli.edge import settings
from rectrain.errors import EXIT_OK


def register(ck) -> None:  # noqa: ANN001
    ext = ck.add_parser("extend-dict", help="grow a model's head for a dictionary with new "
                                             "characters appended (old classes kept)")
    ext.add_argument("--pretrained", required=True, metavar="P.pdparams")
    ext.add_argument("--base-dict", required=True, metavar="OLD.txt",
                     help="the dictionary the weights were trained with")
    ext.add_argument("--dict", dest="dict_path", required=True, metavar="NEW.txt",
                     help="OLD plus new lines at the end (`rectrain data dict LABELS --base OLD`)")
    ext.add_argument("-o", "--out", required=True, metavar="OUT.pdparams")
    ext.add_argument("--use-space-char", action="store_true",
                     help="Global.use_space_char of the weights' config (the official PP-OCRv5 "
                          "models: on)")
    ext.set_defaults(func=handle_extend)

    dl = ck.add_parser("download", help="download official pretrained weights (SHA-256 checked)")
    dl.add_argument("name", help="a known model: th_PP-OCRv5_mobile_rec, PP-OCRv5_mobile_rec, "
                                 "PP-OCRv5_server_rec")
    dl.add_argument("-o", "--out", default=".", metavar="DEST",
                    help="file or folder (default: the current folder)")
    dl.add_argument("--sha256", help="expected SHA-256 (overrides the pinned one)")
    dl.add_argument("--url", help="download this address instead (with --sha256)")
    dl.add_argument("--trust-unpinned", action="store_true",
                    help="accept a model without a pinned hash; its hash is printed and saved")
    dl.set_defaults(func=handle_download)


def handle_extend(args) -> int:  # noqa: ANN001
    from rectrain.checkpoints.extend_dict import extend_dictionary

    report = extend_dictionary(args.pretrained, args.base_dict, args.dict_path, args.out,
                               use_space_char=args.use_space_char)
    print(report.summary())
    print(f"train with: --pretrained {report.out} --dict {args.dict_path}")
    return EXIT_OK


def handle_download(args) -> int:  # noqa: ANN001
    from rectrain.checkpoints.download import KNOWN, download_model
    from rectrain.fsutil import sha256_file

    path = download_model(args.name, args.out, sha256=args.sha256, url=args.url,
                          trust_unpinned=args.trust_unpinned, mirror=settings(args).model_mirror)
    print(f"{path}  sha256 {sha256_file(path)}")
    model = KNOWN.get(args.name)
    if model is not None:
        print(f"dictionary: {model.dictionary}; config: {model.config}"
              + (f"; {model.note}" if model.note else ""))
    return EXIT_OK
