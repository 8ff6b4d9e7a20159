; inherit-tags: tree_sitter_javascript tree_sitter_typescript
; JavaScript's tags plus TypeScript's (signatures, abstract classes, interfaces, modules);
; these add what neither covers: type aliases, enums and typed constants.
(type_alias_declaration
  name: (type_identifier) @name) @definition.type

(enum_declaration
  name: (identifier) @name) @definition.enum

(internal_module
  name: (identifier) @name) @definition.module

(program
  (lexical_declaration
    (variable_declarator
      name: (identifier) @name
      value: [(object) (array) (class) (call_expression) (new_expression)]) @definition.constant))

(program
  (export_statement
    (lexical_declaration
      (variable_declarator
        name: (identifier) @name
        value: [(object) (array) (class) (call_expression) (new_expression)]) @definition.constant)))
