(class_declaration
  name: (_) @name
  body: (class_body) @body) @scope

(abstract_class_declaration
  name: (_) @name
  body: (class_body) @body) @scope

(class
  body: (class_body) @body) @scope

(interface_declaration
  name: (_) @name
  body: (interface_body) @body) @scope

(internal_module
  name: (_) @name
  body: (statement_block) @body) @scope

(function_declaration
  name: (identifier) @name
  body: (statement_block) @body) @scope

(generator_function_declaration
  name: (identifier) @name
  body: (statement_block) @body) @scope

(function_expression
  body: (statement_block) @body) @scope

(arrow_function
  body: (statement_block) @body) @scope

(method_definition
  name: (_) @name
  body: (statement_block) @body) @scope
