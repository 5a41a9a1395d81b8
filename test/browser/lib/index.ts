export * from './workbench';
