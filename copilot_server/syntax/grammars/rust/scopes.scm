(function_item
  name: (identifier) @name
  body: (block) @body) @scope

(impl_item
  type: (_) @name
  body: (declaration_list) @body) @scope

(trait_item
  name: (type_identifier) @name
  body: (declaration_list) @body) @scope

(mod_item
  name: (identifier) @name
  body: (declaration_list) @body) @scope

(closure_expression
  body: (block) @body) @scope
