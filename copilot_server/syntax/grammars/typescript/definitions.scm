; inherits: javascript
; inherit-tags: tree_sitter_typescript
; JavaScript's definitions, TypeScript's tags (signatures, abstract classes, interfaces,
; modules), and what neither covers: type aliases, enums and modules by name.
(type_alias_declaration
  name: (type_identifier) @name) @definition.type

(enum_declaration
  name: (identifier) @name) @definition.enum

(internal_module
  name: (identifier) @name) @definition.module
