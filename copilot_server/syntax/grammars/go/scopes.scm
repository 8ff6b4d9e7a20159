(function_declaration
  name: (identifier) @name
  body: (block) @body) @scope

(method_declaration
  name: (field_identifier) @name
  body: (block) @body) @scope

(func_literal
  body: (block) @body) @scope

(type_declaration
  (type_spec
    name: (type_identifier) @name
    type: (struct_type
      (field_declaration_list) @body))) @scope
