; TypeScript imports as JavaScript writes them (import statements, require calls).
; inherits: javascript
