(class_declaration
  name: (identifier) @name
  body: (class_body) @body) @scope

(interface_declaration
  name: (identifier) @name
  body: (interface_body) @body) @scope

(enum_declaration
  name: (identifier) @name
  body: (enum_body) @body) @scope

(record_declaration
  name: (identifier) @name
  body: (class_body) @body) @scope

(method_declaration
  name: (identifier) @name
  body: (block) @body) @scope

(constructor_declaration
  name: (identifier) @name
  body: (constructor_body) @body) @scope

(lambda_expression
  body: (block) @body) @scope
