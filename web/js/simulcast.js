// How a published track is encoded. A camera goes out as simulcast, three encodings of the same
// picture (docs/signalling.md, "Simulcast and quality"), so that the server can give every
// viewer the one its connection carries without asking the publisher for less. The rids and
// their order, low to high, are the ones the protocol names. A shared screen is sent once: its
// text must stay sharp, and it already runs at a low frame rate. Audio is sent once.

const CAMERA_LAYERS = [
  { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'h', maxBitrate: 1500000 },
];

/** `sendEncodings` for a published entry ({track, source}), or undefined for one encoding. */
export function sendEncodings({ track, source }) {
  if (track.kind !== 'video' || source !== 'camera') return undefined;
  return CAMERA_LAYERS.map((layer) => ({ ...layer }));
}
