#!/usr/bin/env node
// The `pier` command: runs the compiled CLI (npm install compiles it via the prepare script).
import "../dist/src/cli/main.js";
