; inherits: c
(class_specifier
  name: (_) @name
  body: (field_declaration_list) @body) @scope

(namespace_definition
  body: (declaration_list) @body) @scope

(lambda_expression
  body: (compound_statement) @body) @scope
