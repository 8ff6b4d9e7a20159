(class_definition
  name: (identifier) @name
  body: (block) @body) @scope

(function_definition
  name: (identifier) @name
  body: (block) @body) @scope
