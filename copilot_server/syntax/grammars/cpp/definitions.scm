; inherits: c
; C's definitions, and C++'s own: qualified names ("C::m", looked up by their last part),
; methods, classes and aliases.
(function_definition
  declarator: (function_declarator
    declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name)] @name)) @definition.function

(function_definition
  declarator: [(pointer_declarator) (reference_declarator)
    (function_declarator
      declarator: [(identifier) (field_identifier) (qualified_identifier)] @name)]) @definition.function

(declaration
  declarator: (function_declarator
    declarator: [(identifier) (qualified_identifier)] @name)) @definition.function

(field_declaration
  declarator: (function_declarator
    declarator: (field_identifier) @name)) @definition.method

(class_specifier
  name: (type_identifier) @name
  body: (_)) @definition.class

(alias_declaration
  name: (type_identifier) @name) @definition.type
