; inherit-tags: tree_sitter_rust
; The wheel's tags.scm gives structs, enums, traits, functions, methods, modules, macros.
(const_item
  name: (identifier) @name) @definition.constant

(static_item
  name: (identifier) @name) @definition.constant
