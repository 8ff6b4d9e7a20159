(function_definition
  declarator: (_) @name
  body: (compound_statement) @body) @scope

(class_specifier
  name: (_) @name
  body: (field_declaration_list) @body) @scope

(struct_specifier
  name: (_) @name
  body: (field_declaration_list) @body) @scope

(union_specifier
  name: (_) @name
  body: (field_declaration_list) @body) @scope

(enum_specifier
  name: (_) @name
  body: (enumerator_list) @body) @scope

(namespace_definition
  body: (declaration_list) @body) @scope

(lambda_expression
  body: (compound_statement) @body) @scope
