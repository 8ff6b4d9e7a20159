; inherit-tags: tree_sitter_javascript
; The wheel's tags.scm gives classes, functions, methods and function-valued variables.
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
