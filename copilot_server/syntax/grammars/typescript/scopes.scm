; inherits: javascript
(abstract_class_declaration
  name: (_) @name
  body: (class_body) @body) @scope

(interface_declaration
  name: (_) @name
  body: (interface_body) @body) @scope

(internal_module
  name: (_) @name
  body: (statement_block) @body) @scope
