"""The write gateway: every file or folder rectrain creates, replaces or deletes goes through
this package (``tests/test_architecture_gateway.py`` fails on a file-writing call elsewhere).

- :mod:`rectrain.outputs.rules`: may a command write there at all (never over one of its
  inputs, never over a file rectrain did not write unless ``--force``, never the current
  folder, its parents, home or root; folders through the :data:`OUTPUT_MARKER`);
- :mod:`rectrain.outputs.files`: how it is written (atomically, never through a special file,
  deletes never of the current folder, its parents, home or root).
"""

from __future__ import annotations

from rectrain.outputs.files import (
    atomic_open,
    copy_file,
    extract_tar,
    link_or_copy,
    move,
    open_append,
    open_lock,
    open_stream,
    refuse_special,
    remove_empty_dir,
    remove_file,
    remove_quietly,
    remove_tree,
    save_figure,
    save_with,
    special_place,
    symlink,
    tar_writer,
    write_bytes,
    write_json,
    write_json_reserved,
    write_new_file,
    write_text,
)
from rectrain.outputs.rules import (
    OUTPUT_MARKER,
    check_replaceable_dir,
    claim_output_dir,
    claim_output_file,
    is_within,
    protected_reason,
    record_names,
    record_output,
    refuse_delete_in,
    refuse_output_over_inputs,
    refuse_outputs_over_inputs,
    refuse_replacing,
    refuse_replacing_data,
    refuse_replacing_foreign_file,
    same_file,
)

__all__ = [
    "OUTPUT_MARKER", "atomic_open", "check_replaceable_dir", "claim_output_dir", "claim_output_file",
    "protected_reason", "record_names", "record_output", "refuse_replacing", "copy_file",
    "extract_tar", "link_or_copy", "is_within", "move", "open_append", "open_stream",
    "refuse_delete_in", "refuse_output_over_inputs", "refuse_outputs_over_inputs",
    "refuse_replacing_data", "refuse_replacing_foreign_file", "refuse_special",
    "remove_empty_dir", "remove_file", "remove_quietly", "remove_tree", "same_file",
    "save_figure", "save_with", "special_place", "tar_writer", "write_bytes", "write_json",
    "write_json_reserved", "write_new_file", "write_text",
    "open_lock", "symlink",
]
