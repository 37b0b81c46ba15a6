// A contributed file's bytes from the node's content RPC, checked against its hash before use,
// shown as text, an image, or an audio player.
import { useEffect, useState } from "react";
import type { Chain } from "./chain";
import { useChain } from "./connection";
import { contentHash } from "./submission.js";
import { fromHex } from "./hex.js";

/** Stored bytes from the node's content RPC, refused unless they have the blake2 `hash` asked for. */
export async function fetchContent(client: Chain["client"], hash: string): Promise<Uint8Array> {
  const bytes = fromHex(await client._request<string>("datanets_content", [hash]));
  if (contentHash(bytes) !== hash) throw new Error("the node sent bytes that do not match the file's hash");
  return bytes;
}

/** The file's bytes from the node's content RPC, checked against its hash before use. */
export function Preview({ hash, format }: { hash: string; format: string }) {
  const chain = useChain();
  const [state, setState] = useState<{ url?: string; text?: string; error?: string }>({});
  useEffect(() => {
    let url: string | undefined;
    fetchContent(chain.client, hash)
      .then((bytes) => {
        if (["txt", "jsonl", "csv"].includes(format)) {
          setState({ text: new TextDecoder().decode(bytes.subarray(0, 4096)) });
        } else {
          url = URL.createObjectURL(new Blob([bytes as BlobPart]));
          setState({ url });
        }
      })
      .catch((e) => setState({ error: `No preview: ${e instanceof Error ? e.message : String(e)}` }));
    return () => {
      if (url) URL.revokeObjectURL(url);
    };
  }, [chain, hash, format]);
  if (state.error) return <p className="error">{state.error}</p>;
  if (state.text !== undefined) return <pre className="preview">{state.text}</pre>;
  if (!state.url) return <p role="status">Fetching the file…</p>;
  if (["png", "jpeg", "webp", "bmp", "tiff"].includes(format))
    return <img className="preview" src={state.url} alt={`The contributed ${format} image`} />;
  if (["wav", "mp3", "flac"].includes(format)) return <audio controls src={state.url} aria-label="The contributed audio" />;
  return (
    <a href={state.url} download={`contribution.${format}`}>
      Download the {format} file
    </a>
  );
}

