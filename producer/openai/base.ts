// The base path of the OpenAI-compatible API: `new OpenAI({ baseURL: "http://host:8080/openai/v1" })`.
export const OPENAI_BASE = '/openai/v1';
