"""modcycles finds cycles between peer modules and nothing else."""

import tempfile
import unittest
from pathlib import Path

import modcycles


def crate(files: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp())
    for name, text in files.items():
        path = root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


class CycleTests(unittest.TestCase):
    def test_two_peers_using_each_other_are_a_cycle(self) -> None:
        root = crate(
            {
                "lib.rs": "mod a;\nmod b;\nmod c;\n",
                "a.rs": "use crate::b::B;\npub struct A;\n",
                "b.rs": "pub struct B;\nfn f() -> crate::a::A { todo!() }\n",
                "c.rs": "use crate::{a::A, b};\n",
            }
        )
        self.assertEqual(modcycles.cycles(root), [["a", "b"]])

    def test_a_cycle_through_a_use_group_and_super_is_found(self) -> None:
        root = crate(
            {
                "lib.rs": "mod x;\n",
                "x/mod.rs": "mod p;\nmod q;\n",
                "x/p.rs": "use super::{q::Q, self};\npub struct P;\n",
                "x/q.rs": "use super::p::P;\npub struct Q;\n",
            }
        )
        self.assertEqual(modcycles.cycles(root), [["x::p", "x::q"]])

    def test_parents_children_comments_and_tests_are_not_cycles(self) -> None:
        root = crate(
            {
                "lib.rs": "mod t;\nmod u;\n",
                "t/mod.rs": "mod r;\npub use r::R;\npub struct T;\n",
                "t/r.rs": "use crate::t::T;\npub struct R;\n",
                "u.rs": (
                    "use crate::t::R;\n// crate::u is fine\n"
                    "#[cfg(test)]\nmod tests {\n    use crate::u;\n}\n"
                ),
            }
        )
        self.assertEqual(modcycles.cycles(root), [])
        # A child and a module outside its parent using each other directly is a cycle.
        (root / "src" / "t" / "r.rs").write_text("use crate::u;\npub struct R;\n")
        (root / "src" / "u.rs").write_text("use crate::t::r::R;\n")
        self.assertEqual(modcycles.cycles(root), [["t::r", "u"]])


if __name__ == "__main__":
    unittest.main()
