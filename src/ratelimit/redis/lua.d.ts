/** Lua scripts are bundled as text (tsup's `text` loader; vitest's `lua-text` plugin in tests). */
declare module '*.lua' {
  const source: string;
  export default source;
}
