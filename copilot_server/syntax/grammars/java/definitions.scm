; inherit-tags: tree_sitter_java
; The wheel's tags.scm gives classes, interfaces and methods; add enums, records,
; constructors and fields.
(enum_declaration
  name: (identifier) @name) @definition.enum

(record_declaration
  name: (identifier) @name) @definition.class

(constructor_declaration
  name: (identifier) @name) @definition.method

(field_declaration
  declarator: (variable_declarator
    name: (identifier) @name)) @definition.field
