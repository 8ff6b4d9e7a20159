; inherit-tags: tree_sitter_python
; The wheel's tags.scm gives classes, functions and module-level constants, which is all
; the context engine needs for Python.
