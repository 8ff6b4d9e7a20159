; Written for the context engine (see c/definitions.scm); qualified names ("C::m") are
; looked up by their last part.
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

(struct_specifier
  name: (type_identifier) @name
  body: (_)) @definition.class

(union_specifier
  name: (type_identifier) @name
  body: (_)) @definition.class

(enum_specifier
  name: (type_identifier) @name
  body: (_)) @definition.type

(type_definition
  declarator: (type_identifier) @name) @definition.type

(alias_declaration
  name: (type_identifier) @name) @definition.type

(preproc_def
  name: (identifier) @name) @definition.macro

(preproc_function_def
  name: (identifier) @name) @definition.macro
