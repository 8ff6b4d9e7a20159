; inherit-tags: tree_sitter_go
; The wheel's tags.scm gives functions, methods and types; add package-level vars/consts.
(source_file
  (var_declaration
    (var_spec
      name: (identifier) @name)) @definition.variable)

(source_file
  (const_declaration
    (const_spec
      name: (identifier) @name)) @definition.constant)
