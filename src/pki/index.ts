export { createCA } from './ca';
export type { CreateCAOptions, CreatedCA } from './ca';
export { LeafMinter } from './leaf';
export type { LeafMinterOptions, MintedLeaf } from './leaf';
export { derToPem, randomSerialHex, subjectKeyIdFromSpki } from './x509';
